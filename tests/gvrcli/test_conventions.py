"""The CLI speaks its users' dialect (docs/cli-conventions.md): ``--version``, short options that
mean one thing in every command, a usage line and metavars that say what is expected, help in
panels, a start line that says when the model is untrained, and files with the user's umask."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from importlib.metadata import version

import numpy as np
import pytest
from tests.clips import write_video


def run(gvr_cmd, cli_env, *args):
    env = {**cli_env, "COLUMNS": "200", "NO_COLOR": "1"}  # wide help: no option wrapped mid-name
    return subprocess.run([*gvr_cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=180)


def test_version_prints_the_package_version_and_info_shows_it(gvr_cmd, cli_env, fake_model):
    for flag in ("--version", "-V"):
        done = run(gvr_cmd, cli_env, flag)
        assert done.returncode == 0 and done.stdout == f"gvr {version('gvr')}\n", done
    info = run(gvr_cmd, cli_env, "info", "--model", fake_model, "--json")
    assert json.loads(info.stdout)["gvr"] == version("gvr")
    assert f"gvr {version('gvr')}" in run(gvr_cmd, cli_env, "info", "-m", fake_model).stdout


def test_usage_names_inputs_and_output_and_help_is_grouped_in_panels(gvr_cmd, cli_env):
    text = run(gvr_cmd, cli_env, "upscale", "--help").stdout
    assert "Usage: gvr upscale [OPTIONS] INPUT... OUTPUT" in text
    for panel in ("Inputs and outputs", "Model and runtime", "Quality", "Output encoding", "Resources and limits", "Farm and progress"):
        assert f"─ {panel} ─" in text, panel
    # Metavars say what a value is; no Python type names (<list[str]>, <path>, <bool>) nor {paths}.
    for metavar in ("FILE|DIR", "WxH", "MiB", "SECONDS", "GLOB", "I/N", " N "):
        assert metavar in text, metavar
    assert "{paths}" not in text and not re.search(r"<[a-z\[\]|]+>", text), text
    for command, usage in (("degrade", "HQ... LQ_DIR"), ("eval", "PRED... REF_DIR"), ("export", ""), ("info", "")):
        text = run(gvr_cmd, cli_env, command, "-h").stdout
        assert f"Usage: gvr {command} [OPTIONS] {usage}".rstrip() in text
        assert not re.search(r"<[a-z\[\]|]+>", text), (command, text)


def test_a_short_option_means_the_same_in_every_command():
    from typer.main import get_command

    from gvrcli.cli import app

    meaning: dict[str, str] = {}
    group = get_command(app)
    for name, command in group.commands.items():
        seen = set()
        for param in command.params:
            longs = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")]
            for short in (o for o in param.opts if len(o) == 2):
                assert short not in seen, (name, short)
                seen.add(short)
                # --force (export) and --overwrite (upscale, degrade) are one meaning: replace outputs.
                canonical = {"--force": "--overwrite"}.get(longs[0], longs[0])
                assert meaning.setdefault(short, canonical) == canonical, (name, short, longs)
    assert {"-m", "-s", "-j", "-y", "-n", "-t", "-o"} <= set(meaning)


def test_short_options_run(gvr_cmd, cli_env, fake_model, tmp_path):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    done = run(gvr_cmd, cli_env, "upscale", src.parent, tmp_path / "out", "-m", fake_model, "-s", "2", "-j", "1", "-n", "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["status"] for e in events if e["event"] == "planned"] == ["planned"] and not (tmp_path / "out").exists()


def test_the_start_line_and_json_say_when_the_model_is_untrained(gvr_cmd, cli_env, fake_model, tmp_path):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2, size=(32, 24))
    default = run(gvr_cmd, cli_env, "upscale", src.parent, tmp_path / "out", "--json")  # the built-in default
    assert default.returncode == 0, default.stderr
    (start,) = [line for line in default.stderr.splitlines() if line.startswith("gvr: backend")]
    assert "untrained" in start and "bilinear-equivalent" in start
    events = [json.loads(line) for line in default.stdout.splitlines()]
    plan, summary = events[0], events[-1]
    assert plan["event"] == "plan" and plan["untrained"] is True and "untrained" in plan["model_note"]
    assert summary["event"] == "summary" and summary["untrained"] is True and "untrained" in summary["model_note"]

    own = run(gvr_cmd, cli_env, "upscale", src.parent, tmp_path / "out2", "--model", fake_model, "--json")
    assert own.returncode == 0, own.stderr
    assert "untrained" not in own.stderr
    summary = json.loads(own.stdout.splitlines()[-1])
    assert summary["untrained"] is False and summary["model_note"] is None

    info = json.loads(run(gvr_cmd, cli_env, "info", "--json").stdout)  # the default x2
    assert "untrained" in info["model"]["note"] and info["model"]["manifest"]["untrained"] is True
    assert json.loads(run(gvr_cmd, cli_env, "info", "--model", fake_model, "--json").stdout)["model"]["note"] is None


def test_old_manifests_without_the_field_read_as_trained():
    from models.manifest import ModelManifest
    from tests.fake_model import fake_manifest

    graphs = {"condition": {"file": "m.condition.onnx", "sha256": "0" * 64}}
    manifest = ModelManifest.from_json(json.dumps(fake_manifest(graphs=graphs)))  # written before the field
    assert manifest.untrained is False and manifest.note == ""
    assert ModelManifest.from_json(json.dumps(fake_manifest(graphs=graphs, untrained=True))).note.startswith("untrained")
    with pytest.raises(ValueError, match="untrained"):
        ModelManifest.from_json(json.dumps(fake_manifest(graphs=graphs, untrained="yes")))


def test_on_a_terminal_the_start_line_is_plain_and_warnings_are_yellow():
    from rich.console import Console

    from gvrcli.progress import RichEvents

    err = io.StringIO()
    events = RichEvents(console=Console(file=io.StringIO()), err_console=Console(file=err, force_terminal=True, color_system="standard"))
    events.message("gvr: backend openvino CPU, precision fp32, 1 steps")
    plain = err.getvalue()
    events.warning("gvr: --cfg 3 has no effect")
    warned = err.getvalue()[len(plain):]
    assert "\x1b[33m" not in plain and "backend openvino" in plain
    assert "\x1b[33m" in warned and "has no effect" in warned


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_saved_latents_and_checkpoints_get_the_users_umask(umask, tmp_path):
    """safetensors and mkstemp create 0600; what gvr publishes is 0666 & ~umask, as from open()."""
    from gvrbase import atomic
    from gvrcli.media.latents import latents_path, write_latents
    from gvrbase.filemode import umask as read_umask

    assert read_umask() == umask
    target = latents_path(tmp_path / "clip.mp4")
    partial = atomic.partial_path(target, "0123456789ab")
    write_latents(partial, np.zeros((4, 2, 3, 5), np.float32), 24)
    atomic.publish(partial, target)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # what every other tool gets
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask) == (plain.stat().st_mode & 0o777)

    import torch

    from models.tensorfile import save_tensors

    saved = save_tensors({"w": torch.zeros(3)}, tmp_path / "model.safetensors", {"format": "simplegvr"})
    assert (saved.stat().st_mode & 0o777) == 0o666 & ~umask


def test_a_filesystem_that_refuses_modes_still_gets_the_output(tmp_path, monkeypatch):
    """SMB/CIFS mounts answer chmod with EPERM: the output is published with the mode it has."""
    from gvrbase import atomic

    def refuse(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    partial = tmp_path / ".out.gvr-partial-0123456789ab.json"
    partial.write_text("{}")
    atomic.publish(partial, tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text() == "{}" and not partial.exists()
