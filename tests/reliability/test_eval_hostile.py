"""``gvr eval`` under hostile input (issue 23, case 6 and the sidecars it reads): one bad pair costs
that pair alone, with one line; inputs byte-identical, nothing written, no traceback, no hang."""

from __future__ import annotations

import json
import os

from gvr_harness import gvr
from hostile_cases import judge_run, snapshot
from media_cases import write_video


def test_a_tiny_pair_and_hostile_sidecars_cost_nothing_else(tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for root in (pred, ref):
        write_video(root / "a_tiny.mp4", frames=3, size=(8, 8))  # OpenCV's DIS fails under 12 px
        write_video(root / "good.mp4", size=(64, 48))
        write_video(root / "piped.mp4", size=(64, 48))
    (pred / "good.mp4.gvr.json").write_text(json.dumps({"chunks": {"starts": [0, 3], "overlap": 1}, "scenes": [[0]] * 50000}))
    os.mkfifo(pred / "piped.mp4.gvr.json")  # a blocking read would hang the run
    before = snapshot(tmp_path)
    run = gvr("eval", pred, ref, "--json", timeout=120)
    assert not judge_run(run, (1,)), judge_run(run, (1,))
    assert snapshot(tmp_path) == before, "eval writes nothing and leaves every input as it was"
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "a_tiny.mp4" in errors[0] and "too small to score" in errors[0]
    files = {os.path.basename(e["source"]): e for e in run.events if e["event"] == "file"}
    assert files["a_tiny.mp4"]["status"] == "failed"
    assert files["good.mp4"]["status"] == files["piped.mp4"]["status"] == "done"
    assert any("ignored" in w for w in files["good.mp4"]["warnings"] + files["piped.mp4"]["warnings"])
    summary = run.events[-1]
    assert summary["done"] == 2 and summary["failed"] == 1 and summary["metrics"]["ssim"] == 1.0
