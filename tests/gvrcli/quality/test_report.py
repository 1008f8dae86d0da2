"""``gvr eval --report``: one self-contained HTML file, made from real ``gvr upscale --sidecar``
outputs, checked as text and rendered in a real browser (headless Chromium, when installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest
from tests.clips import write_video

from tests.gvrcli.quality.scenes import moving, still

CLIPS = {"a.mp4": moving, "b.mp4": still, "deep/c.mp4": moving}
FRAMES = 32  # the built-in model's chunks are 20 frames overlapping by 5: chunks start at 0 and 15
METRICS = 9  # psnr_y, psnr_rgb, ssim, warp_error, lr_psnr, flicker, jump, seam, delta_e


def run(cmd, env, *args):
    return subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)


def lr_of(content):
    return lambda i, h, w: cv2.resize(content(i, 2 * h, 2 * w), (w, h), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Three clips upscaled by the built-in model with --sidecar in tiles (48x32 LR, --tile 32: two
    tiles side by side, the second starting at LR column 16, output column 32), then scored with --report."""
    root = tmp_path_factory.mktemp("report")
    for name, content in CLIPS.items():
        write_video(root / "ref" / name, frames=FRAMES, size=(96, 64), content=content)
        write_video(root / "lr" / name, frames=FRAMES, size=(48, 32), content=lr_of(content))
    import os
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    cmd = [sys.executable, "-m", "gvrcli"]
    r = run(cmd, env, "upscale", root / "lr", root / "up", "--sidecar", "--tile", "32")
    assert r.returncode == 0, r.stderr
    r = run(cmd, env, "eval", root / "up", root / "ref", "--lr", root / "lr", "--report", root / "r.html", "--json")
    assert r.returncode == 0, r.stderr
    return root, [json.loads(line) for line in r.stdout.splitlines()]


def test_the_sidecar_gives_the_boundaries_and_the_provenance(evaluated):
    _, events = evaluated
    files = [e for e in events if e["event"] == "file"]
    assert len(files) == 3
    for f in files:
        assert f["boundaries"] == [15] and f["made_by"]["gvr_version"] and f["made_by"]["steps"] >= 1
        assert f["seams"] == {"rows": [], "cols": [32]}
        assert set(f["per_frame"]) == {"psnr_y", "psnr_rgb", "ssim", "warp_error", "lr_psnr", "flicker", "jump", "seam", "delta_e"}
        m = f["metrics"]
        assert m["lr_psnr"] > 20 and m["flicker"] >= 0 and m["boundary_jump"] >= 0 and m["seam_jump"] >= 0 and m["delta_e"] >= 0


def test_the_report_is_one_self_contained_file(evaluated):
    root, _ = evaluated
    text = (root / "r.html").read_text(encoding="utf-8")
    # Nothing fetched: no external script, stylesheet, image or frame (plotly.js's own code names
    # URLs in strings; what matters is that no element loads one).
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=['\"]?(https?:)?//", text)
    assert text.count("class='metric-plot'") == 3 * METRICS
    assert text.count("<img class='crop'") >= 3 * 3  # at least a frame per file, three crops each
    sources = re.findall(r"<img class='crop[^>]* src='([^']*)'", text)
    assert len(sources) == text.count("<img class='crop") and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "deep/c.mp4" in text and "Made by:" in text and "gvr_version" in text


def test_report_without_plotly_is_one_line_and_exit_2(cli_env, tmp_path, evaluated):
    root, _ = evaluated
    fake = tmp_path / "noplotly" / "plotly"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named plotly')\n")
    env = dict(cli_env, PYTHONPATH=f"{tmp_path / 'noplotly'}:{cli_env['PYTHONPATH']}")
    r = run([__import__("sys").executable, "-m", "gvrcli"], env, "eval", root / "up", root / "ref", "--report", tmp_path / "r.html")
    assert r.returncode == 2 and not (tmp_path / "r.html").exists()
    assert r.stderr.count("\n") == 1 and "gvr[report]" in r.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars", "--virtual-time-budget=5000",
)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_the_report_renders_in_headless_chromium(evaluated, tmp_path):
    root, _ = evaluated
    url = (root / "r.html").resolve().as_uri()
    base = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # plotly marks each div it has drawn ("js-plotly-plot") and draws into an SVG ("main-svg"): so
    # these count plots the browser's JavaScript really made, one per metric per file.
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', html)
    assert len(drawn) == 3 * METRICS, len(drawn)
    assert html.count('class="main-svg"') >= 3 * METRICS
    assert len(re.findall(r'data-metric="(\w+)"', html)) == 3 * METRICS
    assert html.count('<img class="crop"') >= 9
    shot = tmp_path / "shot.png"
    r = subprocess.run([*base, "--window-size=1400,2400", f"--screenshot={shot}", url], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1400)
    # Not blank: a white page has variance 0; text, plot lines and the crops give thousands.
    assert float(image.var()) > 100 and (image < 200).any(axis=2).mean() > 0.02


def test_a_report_path_that_cannot_be_written_is_exit_2_before_any_work(cli_env, evaluated, tmp_path):
    root, _ = evaluated
    cmd = [__import__("sys").executable, "-m", "gvrcli"]
    for target, why in ((tmp_path / "nowhere" / "r.html", "does not exist"), (tmp_path, "is a directory")):
        r = run(cmd, cli_env, "eval", root / "up", root / "ref", "--report", target, "--json")
        assert r.returncode == 2 and why in r.stderr
        assert [json.loads(line)["event"] for line in r.stdout.splitlines()] == ["summary"]  # nothing scored
