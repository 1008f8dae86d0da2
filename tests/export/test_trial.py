"""The latent cascade's trial (``gvr trial-cascade``): files of the real formats, named for what they
are, that ``gvr export --vae`` and ``gvr upscale --model BUNDLE/`` take on a fresh clone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from export.trial import LATENT_SHAPE, LATENTS_FILE, SR_FILE, VAE_FILE, make_trial

REPO = Path(__file__).resolve().parents[2]


def test_the_trial_writes_an_untrained_latent_model_a_random_vae_and_a_latent_input(tmp_path):
    import models
    from export import ExportError
    from gvrcli.media.latents import probe_latents, read_latents

    report = make_trial(tmp_path / "trial")
    assert [p.relative_to(tmp_path / "trial").as_posix() for p in report.files] == [VAE_FILE, SR_FILE, LATENTS_FILE]
    assert "untrained" in SR_FILE and "random" in VAE_FILE  # the names say what the weights are
    sr = models.load_model(report.files[1])
    assert sr.config.codec == "wan2.1" and sr.step_independent()  # the untrained default's init
    vae = models.load_vae(report.files[0])
    assert vae.config.z_dim == sr.config.latent_channels
    info = probe_latents(report.files[2], sr.config.latent_channels, 8, 4, max_pixels=4096 * 4096)
    T, h, w = LATENT_SHAPE
    assert (info.frames, info.width, info.height, float(info.fps)) == (4 * (T - 1) + 1, 8 * w, 8 * h, 16.0)
    z = read_latents(info)
    assert abs(z.mean()) < 0.1 and 0.9 < z.std() < 1.1  # ~N(0, 1) like a Wan pipeline's normalised latents
    # (15,360 values: the mean's standard error is 0.008, so 0.1 is 12 of them; seeded anyway)

    with pytest.raises(ExportError, match="already exists"):  # nothing replaced without force
        make_trial(tmp_path / "trial")
    make_trial(tmp_path / "trial", force=True)
    assert sorted(p.name for p in (tmp_path / "trial").iterdir()) == sorted(["latents", SR_FILE, VAE_FILE])  # no staging left


def test_the_readmes_trial_runs_end_to_end_through_the_cli(tmp_path, vae_trace_memo):
    """The README's four lines, less the install: trial-cascade, export --vae, upscale --model BUNDLE/.
    The export runs in-process so the session's VAE trace (the bundles' small VAE, the same
    weights) is reused; the upscale is the real ``gvr`` in a subprocess."""
    from typer.testing import CliRunner

    from gvrcli.cli import app

    trial = tmp_path / "trial"
    made = CliRunner().invoke(app, ["trial-cascade", str(trial)])
    assert made.exit_code == 0, made.output
    assert "untrained" in made.output and "random" in made.output
    exported = CliRunner().invoke(app, [
        "export", "--weights", str(trial / SR_FILE), "--vae", str(trial / VAE_FILE),
        "--target", "openvino", "--out", str(trial / "bundle"),
    ])
    assert exported.exit_code == 0, exported.output

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(
        [sys.executable, "-m", "gvrcli", "upscale", "--model", str(trial / "bundle"), str(trial / "latents"), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    import av

    with av.open(str(tmp_path / "out" / "sample.mkv")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    T, h, w = LATENT_SHAPE
    assert len(frames) == 4 * (T - 1) + 1 and frames[0].shape == (2 * 8 * h, 2 * 8 * w, 3)  # x2 of the decoded size


def test_trial_cascade_refuses_existing_files_with_exit_2_and_one_line(tmp_path):
    from typer.testing import CliRunner

    from gvrcli.cli import app

    (tmp_path / "trial").mkdir()
    (tmp_path / "trial" / VAE_FILE).write_bytes(b"mine")
    result = CliRunner().invoke(app, ["trial-cascade", str(tmp_path / "trial")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "already exists" in result.output and "--force" in result.output
    assert (tmp_path / "trial" / VAE_FILE).read_bytes() == b"mine"  # untouched
    assert sorted(p.name for p in (tmp_path / "trial").iterdir()) == [VAE_FILE]  # nothing else landed
