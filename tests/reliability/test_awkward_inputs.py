"""Awkward but valid inputs upscale correctly; a still image gets a one-frame output or a clear
refusal; symbolic-link loops and links leaving the input root are not followed unless asked, and
never hang the walk.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from gvr_harness import clear_error_for, gvr, leftovers, output_ok, outputs
from media_cases import AWKWARD, LINKS, by_name, hash_tree, video_facts

VALID = [c for c in AWKWARD if c.expect == "upscale"]


@pytest.fixture(scope="module")
def awkward_batch(tmp_path_factory, fake_model):
    """Every valid-but-awkward case in a folder of its own under one root, upscaled in one run."""
    root = tmp_path_factory.mktemp("awkward-in")
    targets = {c.name: c.target(root / c.name.replace(":", "")) for c in VALID + [by_name("folder-named-mp4")]}
    before = hash_tree(root)
    out = tmp_path_factory.mktemp("awkward-out") / "out"
    run = gvr("upscale", root, out, "--model", fake_model, "--json", timeout=240)
    return {"root": root, "out": out, "run": run, "targets": targets, "before": before}


def _output_for(batch, case: str):
    source = str(batch["targets"][case])
    done = [e for e in batch["run"].files() if e["source"] == source]
    assert len(done) == 1 and done[0]["status"] == "done", f"{case}: {done or batch['run'].stderr[-800:]}"
    return batch["targets"][case], done[0]["output"]


@pytest.mark.parametrize("case", [c.name for c in VALID])
def test_awkward_input_upscales_completely(awkward_batch, case):
    source, output = _output_for(awkward_batch, case)
    src = video_facts(source)
    assert output_ok(Path(output), by_name(case).frames, (src["width"], src["height"])) == ""


def test_the_batch_is_clean_and_inputs_untouched(awkward_batch):
    run = awkward_batch["run"]
    assert run.returncode == 0, run.stderr
    assert not run.has_traceback()
    assert leftovers(awkward_batch["out"]) == []
    assert hash_tree(awkward_batch["root"]) == awkward_batch["before"]


def test_vfr_timestamps_survive(awkward_batch):
    source, output = _output_for(awkward_batch, "vfr")
    assert video_facts(output)["times"] == pytest.approx(video_facts(source)["times"], abs=1e-3)


def test_rotation_metadata_survives(awkward_batch):
    _, output = _output_for(awkward_batch, "rotation-90")
    with av.open(output) as c:
        frame = next(c.decode(video=0))
    assert round(abs(frame.rotation)) == 90


def test_10_bit_stays_10_bit(awkward_batch):
    _, output = _output_for(awkward_batch, "10-bit")
    with av.open(output) as c:
        assert "10" in c.streams.video[0].codec_context.pix_fmt


def test_a_folder_named_like_a_video_is_walked_not_failed(awkward_batch):
    assert not any("folder.mp4" in e["source"] and e["status"] == "failed" for e in awkward_batch["run"].files())


def test_a_still_image_named_explicitly_gives_one_frame_or_a_clear_refusal(tmp_path, fake_model):
    target = by_name("still-png-explicit").target(tmp_path / "in")
    run = gvr("upscale", target, tmp_path / "out", "--model", fake_model, "--json", timeout=60)
    assert not run.has_traceback(), run.stderr
    if run.returncode == 0:
        (output,) = outputs(tmp_path / "out")
        assert output_ok(output, 1, (64, 48)) == ""
    else:
        assert run.returncode == 1
        assert clear_error_for(run, target, "image") == ""
        assert outputs(tmp_path / "out") == [] and leftovers(tmp_path / "out") == []


def test_a_still_image_in_a_walked_folder_is_not_an_input(tmp_path, fake_model):
    by_name("still-png-explicit").target(tmp_path / "in")
    by_name("one-frame").target(tmp_path / "in")
    run = gvr("upscale", tmp_path / "in", tmp_path / "out", "--model", fake_model, "--json", timeout=60)
    assert run.returncode == 0 and [p.name for p in outputs(tmp_path / "out")] == ["one-frame.mp4"]


# Expected outputs per link case: (default walk, with --follow-symlinks or None = any finite set)
LINK_OUTPUTS = {
    "symlink-loop": (["real/a.mp4"], None),
    "symlink-outside-root": (["inside.mp4"], None),
}


@pytest.mark.parametrize("case", [c.name for c in LINKS])
@pytest.mark.parametrize("follow", [False, True], ids=["default", "follow-symlinks"])
def test_symlinks_are_not_followed_unless_asked_and_never_hang(tmp_path, fake_model, case, follow):
    root = by_name(case).target(tmp_path / "src" / "in")  # the "outside" target lands in src/in-outside
    before = hash_tree(root.parent)
    out = tmp_path / "out"
    run = gvr("upscale", root, out, "--model", fake_model, "--json", *(["--follow-symlinks"] if follow else []), timeout=90)
    assert not run.timed_out, "a link loop must not hang the walk"
    assert run.returncode == 0, run.stderr
    got = sorted(p.relative_to(out).as_posix() for p in outputs(out))
    want = LINK_OUTPUTS[case][follow]
    if want is not None:
        assert got == want
    else:
        assert 0 < len(got) < 20, f"following links visits each real file a bounded number of times: {got}"
    assert leftovers(out) == []
    assert hash_tree(root.parent) == before, "link targets (inside or outside the root) are never modified"


def test_vfr_case_really_is_variable():
    # Guard the generator: if PyAV ever regularised the timestamps, the VFR case would test nothing.
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = by_name("vfr").target(Path(d))
        times = video_facts(p)["times"]
    steps = {round(b - a, 3) for a, b in zip(times, times[1:])}
    assert len(steps) > 1 and Fraction(0) not in steps
