"""Bad models and bad options: exit 2 with one clear error line, before any video is touched.

"Before any video is touched" is checked three ways: no per-file event (plan, file_start, file)
was emitted, the output directory was not created, and the input folder is byte-for-byte the same.
"""

from __future__ import annotations

import pytest
from gvr_harness import gvr
from media_cases import build_fake_onnx, hash_tree, without_dac_override, write_video
from model_cases import BAD_MODELS, BAD_OPTIONS, option_output


@pytest.fixture
def one_video(tmp_path):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    return src.parent


def _assert_refused_before_any_video(run, out, inputs, before, word):
    assert not run.timed_out
    assert run.returncode == 2, f"exit {run.returncode}: {run.stderr}"
    assert not run.has_traceback(), run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip() and "CUDA provider did not load" not in line]
    assert len(lines) == 1 and lines[0].startswith("gvr: error:"), f"one clear line: {run.stderr!r}"
    assert word.lower() in lines[0].lower(), lines[0]
    assert [e["event"] for e in run.events] == ["summary"], "no video was touched (no plan/file events)"
    assert not out.exists(), "the output directory is not created"
    assert hash_tree(inputs) == before


@pytest.mark.parametrize(
    "case", BAD_MODELS
)
def test_bad_model_exits_2_before_any_video(tmp_path, fake_model, one_video, case):
    build, word = BAD_MODELS[case]
    (tmp_path / "models").mkdir()
    model = build(fake_model, tmp_path / "models")
    before = hash_tree(one_video)
    out = tmp_path / "out"
    run = gvr("upscale", one_video, out, "--model", model, "--json", timeout=60)
    _assert_refused_before_any_video(run, out, one_video, before, word)


def test_a_model_reading_outside_its_folder_never_loads(tmp_path, one_video):
    # The refusal must come from the manifest check, not from ONNX Runtime failing later: the
    # external file exists and holds valid data, so a loader that followed it would succeed.
    model = build_fake_onnx(tmp_path / "m" / "ext.onnx", external_location="../secret.bin")
    assert (tmp_path / "secret.bin").stat().st_size == 40
    run = gvr("upscale", one_video, tmp_path / "out", "--model", model, timeout=60)
    assert run.returncode == 2 and "outside" in run.stderr


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_option_exits_2_before_any_video(tmp_path, fake_model, one_video, case):
    extra, where, word = BAD_OPTIONS[case]
    out = option_output(where, tmp_path, one_video)
    before = hash_tree(one_video)
    before_file = out.read_bytes() if where == "file" else None
    run = gvr("upscale", one_video, out, "--model", fake_model, "--json", *extra, timeout=60)
    if where in ("inside", "same"):
        # The input folder is the output's parent: "not created" means no new entry in it.
        assert not run.timed_out and run.returncode == 2, run.stderr
        assert sorted(p.name for p in one_video.iterdir()) == ["a.mp4"]
        assert hash_tree(one_video) == before
        assert word in run.stderr and not run.has_traceback()
        return
    if where == "file":
        assert run.returncode == 2 and out.read_bytes() == before_file and word in run.stderr, run.stderr
        assert [e["event"] for e in run.events] == ["summary"]
        return
    _assert_refused_before_any_video(run, out, one_video, before, word)


def test_an_unwritable_output_directory_exits_2(tmp_path, fake_model, one_video, mode_bits_bind):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    before = hash_tree(one_video)
    run = gvr("upscale", one_video, locked / "out", "--model", fake_model, "--json", timeout=60,
              preexec_fn=without_dac_override)
    _assert_refused_before_any_video(run, locked / "out", one_video, before, "not writable")


def test_a_missing_input_exits_2(tmp_path, fake_model):
    run = gvr("upscale", tmp_path / "nowhere", tmp_path / "out", "--model", fake_model, timeout=60)
    assert run.returncode == 2 and "nowhere" in run.stderr and not run.has_traceback()
    assert not (tmp_path / "out").exists()
