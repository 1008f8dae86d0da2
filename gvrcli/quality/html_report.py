"""``gvr eval --report report.html``: one self-contained HTML file people can look at.

Why one file with everything inline (plotly.js, CSS, a few lines of JS, the crops as base64 PNG):
a report opened from a farm's file share or attached to a ticket has no network and no folder
beside it. It holds the summary table; per file, where it came from (model, options and gvr
version from its ``--sidecar`` record), one plot per metric over the frames with the chunk
boundaries (solid) and hard cuts (dashed) marked, and its worst frames side by side at 1:1
(input upsampled / output / reference) with a wipe between output and reference.

Plots come from plotly (``include_plotlyjs`` once for the whole page). plotly is the optional extra
``gvr[report]``: the CLI turns its absence into one line and exit 2 before any work.
"""

from __future__ import annotations

import base64
import html
import json
import math
import secrets
import time
from pathlib import Path

import cv2
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from gvrbase import atomic
from gvrcli.errors import InputError, UsageError
from gvrcli.quality.eval import COLUMNS
from gvrcli.report import DONE, FAILED, BatchReport
from gvrcli.quality.worst import View

# Per-frame series shown, with their axis titles (every metric of the table that has one value per frame).
PLOTS = {
    "psnr_y": "PSNR-Y (dB)",
    "psnr_rgb": "PSNR-RGB (dB)",
    "ssim": "SSIM",
    "warp_error": "warping error",
    "lr_psnr": "LR consistency (dB)",
    "flicker": "flicker (code values)",
    "jump": "boundary jump (x median)",
    "seam": "tile seam jump (x median)",
    "delta_e": "colour drift (delta-E)",
}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.failed{color:#b00}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:4px}
.views{display:flex;flex-wrap:wrap;gap:16px}.view figure{margin:0 8px 0 0;display:inline-block;vertical-align:top}
img{image-rendering:pixelated}.wipe{position:relative;display:inline-block;line-height:0}
.wipe img.top{position:absolute;left:0;top:0;clip-path:inset(0 50% 0 0)}.made{color:#555}
"""

# The wipe: the slider sets how much of the output (top image) covers the reference beneath.
_JS = """
function gvrWipe(slider){var img=slider.parentNode.querySelector('img.top');
img.style.clipPath='inset(0 '+(100-slider.value)+'% 0 0)';}
"""


def check_report_target(path: Path) -> None:
    """Refuse before any work a report path that cannot be written (exit 2, one line)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--report {path}: is a directory; give a file name such as report.html")
    if not path.parent.is_dir():
        raise UsageError(f"--report {path}: folder {path.parent} does not exist")


def write_report(path: Path, report: BatchReport, views: dict) -> None:
    """Write the report atomically (a partial beside it, then a rename)."""
    path = Path(path)
    text = render(report, views)
    partial = atomic.partial_path(path, secrets.token_hex(8))
    try:
        partial.write_text(text, encoding="utf-8")
        atomic.publish(partial, path)
    except OSError as e:
        raise InputError(f"--report {path}: {e.strerror or e}") from None
    finally:
        partial.unlink(missing_ok=True)


def render(report: BatchReport, views: dict) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gvr eval report</title>",
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script><script>{_JS}</script></head><body>",
        f"<h1>gvr eval</h1><p>{time.strftime('%Y-%m-%d %H:%M')}: {report.count(DONE)} file(s) scored, "
        f"{report.count(FAILED)} failed, {report.seconds:.1f} s.</p>",
        _summary(report),
    ]
    for k, f in enumerate(f for f in report.files if f.status == DONE):
        parts.append(_file_section(k, f, views.get(str(f.source), [])))
    parts.append("</body></html>")
    return "\n".join(parts)


def _cell(v, fmt: str) -> str:
    return "-" if v is None else ("inf" if isinstance(v, float) and math.isinf(v) else format(v, fmt))


def _summary(report: BatchReport) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for t in ["file", *(title for _, title, _ in COLUMNS)])
    rows = []
    for f in report.files:
        name = html.escape(f.extra.get("name", str(f.source)))
        if f.status == DONE:
            m = f.extra["metrics"]
            rows.append(f"<tr><td>{name}</td>" + "".join(f"<td>{_cell(m.get(k), fmt)}</td>" for k, _, fmt in COLUMNS) + "</tr>")
        else:
            rows.append(f"<tr class='failed'><td colspan='{len(COLUMNS) + 1}'>{html.escape(f.reason or f.status)}</td></tr>")
    if report.count(DONE):
        m = report.extra.get("metrics", {})
        rows.append(f"<tr><th>mean of {report.count(DONE)}</th>" + "".join(f"<th>{_cell(m.get(k), fmt)}</th>" for k, _, fmt in COLUMNS) + "</tr>")
    return f"<h2>Summary</h2><table id='summary'><tr>{head}</tr>{''.join(rows)}</table>"


def _made_by(extra: dict) -> str:
    made = extra.get("made_by")
    if not made:
        return "<p class='made'>No sidecar record beside this output (upscale with --sidecar to see the model and options here).</p>"
    facts = ", ".join(f"{html.escape(str(k))} {html.escape(json.dumps(v))}" for k, v in made.items())
    return f"<p class='made'>Made by: {facts}</p>"


def _file_section(k: int, f, views: list[View]) -> str:
    name = html.escape(f.extra.get("name", str(f.source)))
    per_frame = f.extra.get("per_frame", {})
    boundaries = f.extra.get("boundaries", [])
    cuts = f.extra.get("cuts", [])
    plots = []
    for metric, title in PLOTS.items():
        values = per_frame.get(metric)
        if values is None:
            continue
        plots.append(f"<div class='metric-plot' data-metric='{metric}'>{_plot(values, title, boundaries, cuts)}</div>")
    return (
        f"<section class='file' id='file-{k}'><h2>{name}</h2>{_made_by(f.extra)}"
        f"<p>{f.frames} frames; chunk boundaries: {_boundary_text(boundaries)}; {_seam_text(f.extra.get('seams', {}))}.</p>"
        f"<div class='plots'>{''.join(plots)}</div>"
        f"<h3>Worst frames (lowest PSNR-Y), 1:1</h3><div class='views'>{''.join(_view(v) for v in views) or '<p>none</p>'}</div>"
        "</section>"
    )


def _boundary_text(boundaries: list[int]) -> str:
    if not boundaries:
        return "none known (no sidecar, no --chunk-period)"
    shown = ", ".join(map(str, boundaries[:20]))
    return f"frames {shown}" + (f" and {len(boundaries) - 20} more" if len(boundaries) > 20 else "")


def _seam_text(seams: dict) -> str:
    rows, cols = seams.get("rows", []), seams.get("cols", [])
    if not (rows or cols):
        return "no tile seams known (whole frames, or no sidecar)"
    return f"tiles start at output rows {rows[:20]} and columns {cols[:20]}"


def _plot(values: list, title: str, boundaries: list[int], cuts: list[int]) -> str:
    fig = go.Figure(go.Scatter(x=list(range(len(values))), y=[None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v for v in values], mode="lines+markers", marker={"size": 4}, name=title))
    for b in boundaries[:500]:  # a marker per boundary; more would only blacken the plot
        fig.add_vline(x=b, line={"color": "rgba(200,80,0,0.5)", "width": 1})
    for c in cuts[:500]:
        fig.add_vline(x=c, line={"color": "rgba(0,0,0,0.4)", "width": 1, "dash": "dash"})
    fig.update_layout(title={"text": title, "font": {"size": 13}}, height=230, margin={"l": 50, "r": 10, "t": 30, "b": 30}, xaxis_title="frame", showlegend=False)
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def _png(rgb) -> str:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii") if ok else ""


def _view(v: View) -> str:
    x, y, w, h = v.box
    figures = "".join(
        f"<figure><img class='crop' alt='{html.escape(name)}' width='{w}' height='{h}' src='{_png(img)}'><figcaption>{html.escape(name)}</figcaption></figure>"
        for name, img in v.crops.items()
    )
    wipe = ""
    if "output" in v.crops and "reference" in v.crops:
        wipe = (
            f"<figure><div class='wipe'><img class='crop' width='{w}' height='{h}' alt='reference' src='{_png(v.crops['reference'])}'>"
            f"<img class='crop top' width='{w}' height='{h}' alt='output' src='{_png(v.crops['output'])}'><br>"
            "<input type='range' min='0' max='100' value='50' oninput='gvrWipe(this)' style='width:100%'></div>"
            "<figcaption>wipe: output (left) / reference (right)</figcaption></figure>"
        )
    return f"<div class='view'><p>frame {v.frame}, PSNR-Y {v.psnr_y:.2f} dB, crop {w}x{h} at ({x}, {y})</p>{figures}{wipe}</div>"
