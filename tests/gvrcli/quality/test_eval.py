"""``gvr eval`` as a library: pairing, identity, baselines, per-file errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tests.clips import write_video

from gvrcli.errors import UsageError
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
