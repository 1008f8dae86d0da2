"""``gvr eval`` as a library: pairing, identity, baselines, per-file errors."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.clips import write_video

from gvrcli.errors import UsageError
from gvrcli.progress import SilentEvents
from gvrcli.quality.eval import EvalOptions, evaluate, find_pair, render_table
from gvrcli.report import DONE, FAILED
from tests.gvrcli.quality.scenes import moving, still


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ref")
    write_video(root / "a.mp4", frames=6, size=(96, 64), content=moving)
    write_video(root / "sub" / "b.mp4", frames=6, size=(96, 64), content=still)
    return root


def test_a_video_against_itself_scores_inf_and_one(refs):
    report = evaluate([refs], EvalOptions(reference_dir=refs))
    assert report.exit_code == 0 and [f.status for f in report.files] == [DONE, DONE]
    for f in report.files:
        m = f.extra["metrics"]
        assert m["psnr_y"] == m["psnr_rgb"] == math.inf and m["ssim"] == 1.0
        assert m["warp_error"] == m["reference_warp_error"]
        assert f.frames == 6
    assert report.extra["metrics"]["ssim"] == 1.0
    assert "mean of 2 file(s)" in render_table(report) and " inf " in render_table(report)


def test_pairs_by_relative_path_and_across_containers(refs, tmp_path):
    write_video(tmp_path / "pred" / "sub" / "b.mkv", frames=6, size=(96, 64), content=still, codec="ffv1", pix_fmt="yuv444p")
    assert find_pair(refs, Path("sub/b.mkv")) == refs / "sub" / "b.mp4"
    assert find_pair(refs, Path("sub/c.mkv")) is None
    report = evaluate([tmp_path / "pred"], EvalOptions(reference_dir=refs))
    (f,) = report.files
    assert f.status == DONE and f.extra["reference"] == str(refs / "sub" / "b.mp4")
    assert 30 < f.extra["metrics"]["psnr_y"] < 99 and 0.9 < f.extra["metrics"]["ssim"] < 1


def test_lr_baselines_and_per_file_errors(refs, tmp_path):
    pred, lr = tmp_path / "pred", tmp_path / "lr"
    write_video(pred / "a.mp4", frames=6, size=(96, 64), content=moving)
    write_video(lr / "a.mp4", frames=6, size=(48, 32), content=moving)
    write_video(pred / "sub" / "b.mp4", frames=6, size=(64, 48), content=still)  # wrong size
    write_video(pred / "short.mp4", frames=4, size=(96, 64), content=moving)  # no reference
    (pred / "notes.txt").write_text("not a video")  # silently not an input
    report = evaluate([pred], EvalOptions(reference_dir=refs, lr_dir=lr))
    by_name = {f.source.name: f for f in report.files}
    assert set(by_name) == {"a.mp4", "b.mp4", "short.mp4"}
    assert by_name["a.mp4"].status == DONE
    baselines = by_name["a.mp4"].extra["baselines"]
    assert set(baselines) == {"bicubic", "bilinear"} and all(10 < b["psnr_y"] < 60 for b in baselines.values())
    assert by_name["b.mp4"].status == FAILED and "size 64x48 differs" in by_name["b.mp4"].reason
    assert by_name["short.mp4"].status == FAILED and "no reference" in by_name["short.mp4"].reason
    assert report.exit_code == 1
    assert set(report.extra["baselines"]) == {"bicubic", "bilinear"}


def test_frame_count_mismatch_is_a_clear_error(refs, tmp_path):
    write_video(tmp_path / "pred" / "a.mp4", frames=4, size=(96, 64), content=moving)
    (f,) = evaluate([tmp_path / "pred"], EvalOptions(reference_dir=refs)).files
    assert f.status == FAILED and "4 frames, the reference has 6" in f.reason


def test_usage_errors(refs, tmp_path):
    with pytest.raises(UsageError, match="reference directory"):
        evaluate([refs], EvalOptions(reference_dir=tmp_path / "missing"))
    with pytest.raises(UsageError, match="LR directory"):
        evaluate([refs], EvalOptions(reference_dir=refs, lr_dir=tmp_path / "missing"))


def test_a_tiny_pair_fails_alone_and_every_other_pair_is_scored(refs, tmp_path):
    # Issue 23, case 6: OpenCV's DIS fails under 12 px; the pair fails with a line, the rest go on.
    write_video(refs / "0tiny.mp4", frames=3, size=(8, 8), content=moving)
    try:
        report = evaluate([refs], EvalOptions(reference_dir=refs))
    finally:
        (refs / "0tiny.mp4").unlink()
    by_name = {f.extra.get("name", f.source.name): f for f in report.files}
    assert by_name["0tiny.mp4"].status == FAILED and "8x8 is too small to score" in by_name["0tiny.mp4"].reason
    assert by_name["a.mp4"].status == by_name["sub/b.mp4"].status == DONE
    assert report.exit_code == 1 and report.extra["metrics"]["ssim"] == 1.0
    assert "mean of 2 file(s)" in render_table(report)


def test_any_error_while_scoring_fails_that_pair_alone(refs, monkeypatch):
    import gvrcli.quality.eval as eval_module

    real, calls = eval_module.Consistency.add, []

    def broken_once(self, *frames):  # the first frame of the first pair: OpenCV fails
        calls.append(1)
        if len(calls) == 1:
            raise cv2.error("OpenCV(5.1.0) dis_flow.cpp: error: (-201) internal error")
        return real(self, *frames)

    monkeypatch.setattr(eval_module.Consistency, "add", broken_once)
    report = evaluate([refs], EvalOptions(reference_dir=refs))
    first, second = report.files
    assert first.status == FAILED and first.reason.startswith(f"{first.source}: cannot score (error:")
    assert "\n" not in first.reason
    assert second.status == DONE and report.exit_code == 1


def test_per_frame_series_and_a_planted_jump_at_the_chunk_period(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    write_video(ref / "j.mkv", frames=30, size=(96, 64), content=moving, codec="ffv1", pix_fmt="yuv444p")
    step = lambda t, h, w: np.clip(moving(t, h, w) + (8 / 255 if t >= 15 else 0), 0, 1)  # noqa: E731
    write_video(pred / "j.mkv", frames=30, size=(96, 64), content=step, codec="ffv1", pix_fmt="yuv444p")
    (f,) = evaluate([pred], EvalOptions(reference_dir=ref, chunk_period=15)).files
    series = f.extra["per_frame"]
    assert set(series) == {"psnr_y", "psnr_rgb", "ssim", "warp_error", "lr_psnr", "flicker", "jump", "delta_e"}
    assert all(len(v) == 30 for v in series.values())
    assert f.extra["boundaries"] == [15]
    jumps = np.array([np.nan if v is None else v for v in series["jump"]])
    assert int(np.nanargmax(jumps)) == 15 and f.extra["metrics"]["boundary_jump"] > 10
    assert f.extra["metrics"]["lr_psnr"] is None  # no --lr


def test_sidecar_gives_boundaries_and_provenance_and_a_bad_one_is_only_a_warning(refs, tmp_path):
    pred = tmp_path / "pred"
    write_video(pred / "a.mp4", frames=6, size=(96, 64), content=moving)
    sidecar = {
        "chunks": {"starts": [0, 3], "overlap": 1}, "tiles": {"rows": [], "cols": [48], "overlap": [0, 8]},
        "scenes": [0], "gvr_version": "9.9", "model": "m.onnx", "steps": 4, "source_sha256": "x",
    }
    (pred / "a.mp4.gvr.json").write_text(json.dumps(sidecar))
    (f,) = evaluate([pred], EvalOptions(reference_dir=refs)).files
    assert f.status == DONE and f.extra["boundaries"] == [3] and f.extra["seams"] == {"rows": [], "cols": [48]}
    assert len(f.extra["per_frame"]["seam"]) == 6 and f.extra["metrics"]["seam_jump"] is not None
    assert f.extra["made_by"] == {"gvr_version": "9.9", "model": "m.onnx", "steps": 4}
    (pred / "a.mp4.gvr.json").write_text('{"chunks": {"starts": "all", "overlap": 1}}')
    (f,) = evaluate([pred], EvalOptions(reference_dir=refs)).files
    assert f.status == DONE and f.extra["boundaries"] == [] and "sidecar" in f.warnings[0] and "ignored" in f.warnings[0]
    (pred / "a.mp4.gvr.json").unlink()
    os.mkfifo(pred / "a.mp4.gvr.json")  # never opened for a blocking read
    (f,) = evaluate([pred], EvalOptions(reference_dir=refs)).files
    assert f.status == DONE and "not a regular file" in f.warnings[0]


def test_the_table_shows_whole_names_relative_to_the_folders_given(tmp_path):
    long = "a_rather_long_folder_name_for_the_shots/and_a_long_clip_name_too.mp4"
    for root in ("ref", "pred"):
        write_video(tmp_path / root / long, frames=3, size=(48, 32), content=moving)
    report = evaluate([tmp_path / "pred"], EvalOptions(reference_dir=tmp_path / "ref"))
    table = render_table(report)
    assert f"\n{long} " in table and str(tmp_path) not in table
    assert len({len(line) for line in table.splitlines()[:3]}) == 1  # header, rule and row line up


def test_the_eta_follows_the_frames_scored(refs):
    etas = []

    class Spy(SilentEvents):
        def file_started(self, source, frames, output="score"):
            ledger = super().file_started(source, frames, output)
            real = ledger.frames_out

            def frames_out(count=1, seconds=None):
                real(count, seconds)
                etas.append(ledger.snapshot().eta_seconds)

            ledger.frames_out = frames_out
            return ledger

    evaluate([refs / "a.mp4"], EvalOptions(reference_dir=refs), events=Spy())
    assert len(etas) == 6 and all(e is not None and e >= 0 for e in etas)
