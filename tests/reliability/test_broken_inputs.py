"""Broken inputs: each gets one line naming the file and the cause, the batch goes on, exit 1,
and nothing (no output, no partial) is left for it. Inputs are never modified.

One ``gvr upscale`` run over a folder holding every broken case and two good videos; each case
is then judged on its own.
"""

from __future__ import annotations

import pytest
from gvr_harness import clear_error_for, gvr, leftovers, output_ok, outputs
from media_cases import BROKEN, FRAMES, HOSTILE, SIZE, by_name, hash_tree, without_dac_override, write_video


@pytest.fixture(scope="module")
def broken_batch(tmp_path_factory, fake_model):
    root = tmp_path_factory.mktemp("broken-in")
    targets = {case.name: case.target(root) for case in BROKEN}
    goods = [write_video(root / "good-a.mp4"), write_video(root / "sub" / "good-b.mp4")]
    before = hash_tree(root)
    out = tmp_path_factory.mktemp("broken-out") / "out"
    run = gvr("upscale", root, out, "--model", fake_model, "--json", timeout=180)
    return {"root": root, "out": out, "run": run, "targets": targets, "goods": goods, "before": before}


@pytest.mark.parametrize("case", [c.name for c in BROKEN])
def test_each_broken_input_gets_one_clear_line_and_leaves_nothing(broken_batch, case):
    run, target, out = broken_batch["run"], broken_batch["targets"][case], broken_batch["out"]
    assert not run.timed_out, "the batch hung"
    assert clear_error_for(run, target, by_name(case).cause) == ""
    failed = [e for e in run.files("failed") if e["source"] == str(target)]
    assert len(failed) == 1, f"the --json events report {case} as failed once: {run.files()}"
    assert not any(p.stem == target.stem for p in outputs(out)), "no output for a broken input"
    assert not [p for p in leftovers(out) if p.split("/")[-1].startswith(f".{target.stem}.")], "no partial left for it"


def test_the_batch_goes_on_exits_1_and_touches_no_input(broken_batch):
    run, out = broken_batch["run"], broken_batch["out"]
    assert run.returncode == 1, run.stderr
    assert not run.has_traceback(), run.stderr
    for good in broken_batch["goods"]:
        dst = out / good.relative_to(broken_batch["root"])
        assert output_ok(dst, FRAMES, SIZE) == "", f"{good.name} was upscaled despite its broken neighbours"
    s = run.summary
    assert (s["done"], s["failed"]) == (2, len(BROKEN))
    assert hash_tree(broken_batch["root"]) == broken_batch["before"], "inputs unchanged"


def test_no_temporary_partial_or_lock_file_is_left(broken_batch):
    # Regression (finding 1, fixed): a file failing mid-decode used to leave its partial behind.
    assert leftovers(broken_batch["out"]) == []


def test_a_fifo_named_mp4_is_refused_without_blocking(tmp_path, fake_model):
    target = by_name("unreadable-fifo").target(tmp_path / "in")
    good = write_video(tmp_path / "in" / "good.mp4")
    run = gvr("upscale", target, good, tmp_path / "out", "--model", fake_model, timeout=60)
    assert not run.timed_out, "a FIFO must not block the batch"
    assert run.returncode == 1, run.stderr
    assert clear_error_for(run, target) == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["good.mp4"]


def test_an_unreadable_file_is_reported_and_the_batch_goes_on(tmp_path, fake_model, mode_bits_bind):
    target = by_name("unreadable-chmod-000").target(tmp_path / "in")
    write_video(tmp_path / "in" / "good.mp4")
    run = gvr("upscale", tmp_path / "in", tmp_path / "out", "--model", fake_model, timeout=120,
              preexec_fn=without_dac_override)
    assert run.returncode == 1, run.stderr
    assert clear_error_for(run, target, "permission") == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["good.mp4"]
    assert target.stat().st_mode & 0o777 == 0, "the input's mode is untouched"


def test_an_unreadable_file_named_explicitly_fails_alone(tmp_path, fake_model, mode_bits_bind):
    target = by_name("unreadable-chmod-000").target(tmp_path / "in")
    good = write_video(tmp_path / "in" / "good.mp4")
    run = gvr("upscale", target, good, tmp_path / "out", "--model", fake_model, timeout=120,
              preexec_fn=without_dac_override)
    assert run.returncode == 1, run.stderr
    assert clear_error_for(run, target, "permission") == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["good.mp4"]


def test_two_inputs_with_one_output_name_fail_with_a_line(tmp_path, fake_model):
    # Regression (finding 2, fixed): the collision used to be counted but never printed.
    # a.mkv keeps its name; a.webm cannot hold h264 and becomes a.mkv too: the second one must fail
    # with a line, like any other failed input.
    root = tmp_path / "in"
    write_video(root / "a.mkv")
    write_video(root / "a.webm", codec="libvpx-vp9")
    run = gvr("upscale", root, tmp_path / "out", "--model", fake_model, "--json", timeout=120)
    assert run.returncode == 1
    assert [e["source"] for e in run.files("failed")] == [str(root / "a.webm")], "reported as a failed file event"
    assert clear_error_for(run, root / "a.webm", "collide") == ""


@pytest.mark.parametrize(
    "case",
    [c.name for c in HOSTILE],
)
def test_a_hostile_input_fails_alone(tmp_path, fake_model, case):
    target = by_name(case).target(tmp_path / "in")
    write_video(tmp_path / "in" / "good.mp4")
    run = gvr("upscale", tmp_path / "in", tmp_path / "out", "--model", fake_model, "--json", timeout=60)
    assert not run.has_traceback(), run.stderr[-400:]
    assert run.returncode == 1
    assert clear_error_for(run, target) == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["good.mp4"]
