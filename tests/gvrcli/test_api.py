"""``gvrcli.api``: one file (or one range) from Python, a model session kept between calls, the
CLI's contracts (results, skips, one-line failures); the Ray example where Ray is installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.clips import read_video, write_video

from gvrcli import api
from gvrcli.errors import GvrError

REPO = Path(__file__).resolve().parents[2]


def test_a_session_keeps_the_model_and_results_follow_the_cli_contracts(tmp_path, fake_model):
    a = write_video(tmp_path / "in" / "a.mp4", frames=6)
    b = write_video(tmp_path / "in" / "b.mp4", frames=4)
    (tmp_path / "in" / "bad.mp4").write_bytes(b"not a video")
    with api.Session() as session:
        first = api.upscale_file(a, tmp_path / "out" / "a.mp4", model=fake_model, session=session)
        (loaded,) = [held[1] for held in session.held.values()]
        second = api.upscale_file(b, tmp_path / "out" / "b.mp4", model=fake_model, session=session)
        assert [held[1] for held in session.held.values()] == [loaded], "the second call reused the loaded model"
        again = api.upscale_file(a, tmp_path / "out" / "a.mp4", model=fake_model, session=session)
        bad = api.upscale_file(tmp_path / "in" / "bad.mp4", tmp_path / "out" / "bad.mp4", model=fake_model, session=session)
    assert (first.status, second.status, again.status, bad.status) == ("done", "done", "skipped", "failed")
    assert "bad.mp4" in bad.reason and "\n" not in bad.reason
    assert read_video(tmp_path / "out" / "a.mp4")["frames"] == 6
    with pytest.raises(GvrError) as refused:
        api.upscale_file(a, tmp_path / "out" / "c.mp4", model=tmp_path / "missing.onnx")
    assert refused.value.exit_code == 2


def test_a_range_through_the_api_is_the_clis_segment_and_joins(tmp_path, fake_model):
    clip = write_video(tmp_path / "clip.mp4", frames=12, size=(64, 48))
    plan = api.plan_file(clip, tmp_path / "plan.json", segments=2, model=fake_model, codec="ffv1")
    out = tmp_path / "out.mkv"
    with api.Session() as session:
        for k in range(len(plan.ranges)):
            assert api.upscale_file(clip, out, model=fake_model, plan=tmp_path / "plan.json", range_index=k, session=session, codec="ffv1").status == "done"
    api.upscale_file(clip, tmp_path / "single.mkv", model=fake_model, codec="ffv1")
    assert api.join_segments(tmp_path / "plan.json", out, codec="ffv1").frames == 12
    joined, single = read_video(out), read_video(tmp_path / "single.mkv")
    assert joined["times"] == single["times"] and all(np.array_equal(x, y) for x, y in zip(joined["rgb"], single["rgb"]))


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (not a gvr dependency)")
def test_the_ray_example_upscales_every_file_with_one_session_per_actor(tmp_path, fake_model):
    import ray

    sys.path.insert(0, str(REPO / "examples" / "ray"))
    try:
        import upscale_ray
    finally:
        sys.path.pop(0)
    for name in ("a", "b", "c"):
        write_video(tmp_path / "in" / f"{name}.mp4", frames=4)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        rows = upscale_ray.run(tmp_path / "in", tmp_path / "out", str(fake_model), gpus=0, cpu_actors=1)
    finally:
        ray.shutdown()
    assert sorted(r["status"] for r in rows) == ["done"] * 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
