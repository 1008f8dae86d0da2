"""``gvr degrade`` and ``gvr eval`` as a user runs them: the issue's acceptance path, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.clips import read_video, write_video

from tests.gvrcli.quality.scenes import moving, still


def run(cmd, env, *args):
    return subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def hq(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hq")
    write_video(root / "moving.mp4", frames=8, size=(192, 128), content=moving)
    write_video(root / "static.mp4", frames=8, size=(192, 128), content=still)
    return root


def test_degrade_upscale_eval_round_trip(gvr_cmd, cli_env, hq, tmp_path):
    lq, up = tmp_path / "lq", tmp_path / "up"
    r = run(gvr_cmd, cli_env, "degrade", hq, lq, "--scale", "2", "--seed", "7", "--json")
    assert r.returncode == 0, r.stderr
    files = [e for e in events(r.stdout) if e["event"] == "file"]
    assert {Path(e["source"]).name for e in files} == {"moving.mp4", "static.mp4"}
    assert all(e["params"]["base"]["crf"] and e["params"]["flow"]["threshold"] and e["seed"] == 7 for e in files)
    for name in ("moving.mp4", "static.mp4"):
        v = read_video(lq / name)
        assert (v["width"], v["height"], v["frames"]) == (96, 64, 8)

    assert run(gvr_cmd, cli_env, "upscale", lq, up).returncode == 0  # the built-in default model
    r = run(gvr_cmd, cli_env, "eval", up, hq, "--lr", lq, "--json")
    assert r.returncode == 0, r.stderr
    out = events(r.stdout)
    for e in (e for e in out if e["event"] == "file"):
        m = e["metrics"]
        assert 10 < m["psnr_y"] < 60 and 10 < m["psnr_rgb"] < 60 and 0 < m["ssim"] < 1
        assert m["warp_error"] >= 0 and set(e["baselines"]) == {"bicubic", "bilinear"}
    summary = out[-1]
    assert summary["event"] == "summary" and summary["done"] == 2 and 0 < summary["metrics"]["ssim"] < 1

    r = run(gvr_cmd, cli_env, "eval", hq, hq, "--json")
    assert r.returncode == 0, r.stderr
    for e in (e for e in events(r.stdout) if e["event"] == "file"):
        assert e["metrics"]["psnr_y"] is None or e["metrics"]["psnr_y"] >= 99  # inf is null in JSON
        assert e["metrics"]["ssim"] >= 0.999

    r = run(gvr_cmd, cli_env, "eval", up, hq)  # human table on stdout
    assert r.returncode == 0 and "PSNR-Y" in r.stdout and "mean of 2 file(s)" in r.stdout


def test_same_seed_through_the_cli_gives_identical_files(gvr_cmd, cli_env, hq, tmp_path):
    for name in ("a", "b"):
        assert run(gvr_cmd, cli_env, "degrade", hq / "moving.mp4", tmp_path / name).returncode == 0
    assert (tmp_path / "a" / "moving.mp4").read_bytes() == (tmp_path / "b" / "moving.mp4").read_bytes()


def test_exit_codes(gvr_cmd, cli_env, hq, tmp_path):
    assert run(gvr_cmd, cli_env, "degrade", hq, tmp_path / "lq", "--scale", "3").returncode == 2
    assert run(gvr_cmd, cli_env, "degrade", hq).returncode == 2
    r = run(gvr_cmd, cli_env, "eval", hq, tmp_path / "nowhere", "--json")
    assert r.returncode == 2 and events(r.stdout)[-1]["exit_code"] == 2
    write_video(tmp_path / "pred" / "moving.mp4", frames=3, size=(192, 128), content=moving)
    r = run(gvr_cmd, cli_env, "eval", tmp_path / "pred", hq)
    assert r.returncode == 1 and "error:" in r.stderr and "3 frames, the reference has 8" in r.stderr


def test_a_tiny_pair_fails_with_a_line_and_the_table_and_summary_still_appear(gvr_cmd, cli_env, hq, tmp_path):
    # Issue 23, case 6: a pair under 12 px on a side (OpenCV's DIS cannot take it).
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for root in (pred, ref):
        write_video(root / "a_tiny.mp4", frames=3, size=(8, 8), content=moving)
        write_video(root / "moving.mp4", frames=4, size=(96, 64), content=moving)
    r = run(gvr_cmd, cli_env, "eval", pred, ref)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "a_tiny.mp4" in errors[0] and "too small to score" in errors[0]
    assert "mean of 1 file(s)" in r.stdout and "\nmoving.mp4 " in r.stdout and "1 failed" in r.stdout
    r = run(gvr_cmd, cli_env, "eval", pred, ref, "--json")
    summary = events(r.stdout)[-1]
    assert r.returncode == 1 and summary["done"] == 1 and summary["failed"] == 1 and summary["metrics"]["ssim"] == 1.0


def test_the_quality_commands_never_import_torch(cli_env):
    code = "import sys, gvrcli.cli, gvrcli.quality.pairs, gvrcli.quality.eval, gvrcli.quality.html_report; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr
