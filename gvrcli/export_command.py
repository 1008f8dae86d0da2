"""``gvr export``: the thin command over ``export.export_model`` (library first, CLI thin).

torch and the exporter are imported inside the command body only, so ``gvrcli.cli`` (the
runtime, which must not need torch) can register this command without importing them.
Exit codes: 0 exported (and verified, if asked) · 1 a backend outside its tolerance, or an
internal error · 2 bad input (unknown config, wrong checkpoint, unwritable or existing output, bad
option), nothing written.

Progress, as ``gvr upscale`` reports it (``ExportEvents``): a start line on stderr and a line per
stage on stdout (``stage: tracing step graph (0:04)``), a ``status:`` heartbeat every
``--progress-interval`` seconds while a stage runs, and with ``--json`` only JSON lines on stdout:
``start``, a ``progress`` event per stage and per heartbeat, ``summary`` (also for a refusal).
Refusals (bad config, checkpoint, output) come before the first stage, so in plain mode they
stay one ``gvr: error:`` line: the start line waits for the first stage. The exporter
reports its stages through ``on_stage`` (``export.progress``); it never imports this module.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from gvrbase.errors import error_line, error_summary
from gvrcli.cli_help import EXPORT, FARM, MODEL, QUALITY


class ExportEvents:
    """Renders an export's stages: plain lines, or JSON events in ``gvr upscale``'s shapes."""

    def __init__(self, as_json: bool, interval: float, out=None, err=None):
        from gvrcli.progress import Heartbeat

        self.as_json, self.out, self.err = as_json, out or sys.stdout, err or sys.stderr
        self.started = time.monotonic()
        self.stage, self.done, self.total = "starting", 0, 0
        self.lock = threading.Lock()  # the heartbeat thread and the exporter both write
        self.closed = False
        self.heartbeat = Heartbeat(interval, lambda: self._progress(beat=True))
        self.start_line = ""  # plain mode: printed with the first stage

    def start(self, **facts) -> None:
        if self.as_json:
            self._emit({"event": "start", "command": "export", **facts})
            self.heartbeat.start()
        else:
            flags = [facts["precision"], *(name for name in ("bundle", "verify") if facts.get(name))]
            self.start_line = f"gvr export: {facts['target']} -> {facts['out'] or 'the default name'} ({', '.join(flags)})"

    def __call__(self, name: str, done: int = 0, total: int = 0) -> None:
        """``export.progress.OnStage``: a stage started, or a counting stage moved."""
        with self.lock:
            self.stage, self.done, self.total = name, done, total
            start_line, self.start_line = self.start_line, ""
        if start_line:
            self._line(start_line, self.err)
        self.heartbeat.start()
        self._progress(beat=False)

    def _status(self) -> str:
        counted = self.total and self.stage != "done"
        return f"{self.stage} {self.done}/{self.total}" if counted else self.stage

    def _progress(self, beat: bool) -> None:
        from gvrcli.progress import clock

        elapsed = time.monotonic() - self.started
        if self.as_json:
            percent = round(100.0 * self.done / self.total, 2) if self.total else None
            self._emit({
                "event": "progress", "percent": percent, "eta_seconds": None, "elapsed_seconds": round(elapsed, 1),
                "stage": self.stage, "status": self._status(), "done": self.done, "total": self.total, "heartbeat": beat,
            })
        else:
            self._line(f"status: {self._status()}; {clock(elapsed)} elapsed" if beat else f"stage: {self._status()} ({clock(elapsed)})")

    def finish(self, summary: dict, lines: list[str]) -> None:
        """The last lines: a 100% progress event and the summary (JSON), or the report's lines."""
        self.heartbeat.stop()
        if self.as_json:
            self("done", 1, 1)  # percent 100, as upscale's last progress event
            self._emit({"event": "summary", "seconds": round(time.monotonic() - self.started, 3), **summary})
        else:
            for line in lines:
                self._line(line)
        self.closed = True

    def fail(self, message: str, code: int) -> None:
        """A refusal or failure: one ``gvr: error:`` line (stderr) and, with JSON, the summary."""
        self.heartbeat.stop()
        self._line(error_line(message), self.err)
        if self.as_json:
            self._emit(error_summary(message, code))
        self.closed = True
        raise typer.Exit(code)

    def _emit(self, obj: dict) -> None:
        self._line(json.dumps(obj, ensure_ascii=False))

    def _line(self, text: str, stream=None) -> None:
        with self.lock:
            if self.closed:
                return
            stream = stream or self.out
            stream.write(text.replace("\n", "\\n") + "\n")
            stream.flush()


@contextlib.contextmanager
def _stop_on_signals():
    """SIGINT/SIGTERM end an export with exit 128 + signal and nothing left beside ``--out``: the
    handler removes this process's staging folders (``.NAME.*.part/``) itself and exits, since an
    exception raised from it inside the exporter's C++ callbacks may be swallowed there."""
    from gvrbase import atomic

    def handler(signum, frame):
        atomic.remove_staging()
        sys.stderr.write(f"gvr: export stopped by {signal.Signals(signum).name}; nothing written\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


EXPORT_MODULES = ("torch", "einops", "safetensors", "onnxscript")  # pyproject's export extra


def missing_export_modules() -> list[str]:
    """The export extra's modules that cannot be imported here (without importing them)."""
    return [name for name in EXPORT_MODULES if _missing(name)]


def _missing(name: str) -> bool:
    import importlib.util

    try:
        return not (sys.modules[name] is not None if name in sys.modules else importlib.util.find_spec(name) is not None)
    except (ImportError, ValueError):
        return True


def _parse_shape(text: Optional[str]) -> Optional[tuple[int, int, int]]:
    if text is None:
        return None
    try:
        T, h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"--shape must be T,h,w (frames, height, width of the low-resolution input), got {text!r}") from None
    return T, h, w


EXTRA_HINT = "pip install -e '.[export]' (from the gvr checkout)"


def export_command(
    target: str = typer.Option(..., "--target", metavar="onnx|openvino", rich_help_panel=EXPORT, help="onnx | openvino."),
    config: Optional[str] = typer.Option(None, "--config", metavar="NAME|FILE", rich_help_panel=MODEL, help="tiny | base | a JSON file of model settings. Default: tiny, or the checkpoint's own config."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE", rich_help_panel=MODEL, help="A SimpleGVR .safetensors checkpoint. Default: the built-in (untrained) default."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", metavar="FILE|DIR", rich_help_panel=EXPORT, help="Output .onnx file, or folder for OpenVINO IR. Default: gvr-NAME-xSCALE.onnx / gvr-NAME-xSCALE_openvino/."),
    scale: Optional[int] = typer.Option(None, "-s", "--scale", metavar="N", rich_help_panel=MODEL, help="2 or 4 (built-in default and presets; a checkpoint keeps its own)."),
    precision: str = typer.Option("fp32", "--precision", metavar="TYPE", rich_help_panel=QUALITY, help="fp32 | fp16 | bf16 (a half-precision graph, fp32 I/O; for GPUs) | int8."),
    dynamic: bool = typer.Option(True, "--dynamic/--static", rich_help_panel=EXPORT, help="Any T, H, W (default), or one declared size (--shape)."),
    shape: Optional[str] = typer.Option(None, "--shape", metavar="T,h,w", rich_help_panel=EXPORT, help="T,h,w of the low-resolution latent for --static, e.g. 8,270,480."),
    opset: Optional[int] = typer.Option(None, "--opset", metavar="N", rich_help_panel=EXPORT, help="ONNX opset (>= 23, where the fused Attention op exists)."),
    attention: Optional[str] = typer.Option(None, "--attention", metavar="FORM", rich_help_panel=QUALITY, help="fused (default for fp32) | aligned (default for fp16/bf16: equal q/k/v head sizes, what ONNX Runtime CUDA's Flash kernel takes) | unfused: explicit fallback for runtimes without a fused attention op."),
    ov_source: Optional[str] = typer.Option(None, "--ov-source", metavar="torch|onnx", rich_help_panel=EXPORT, help="openvino only: torch (default, converts the PyTorch module) | onnx (converts our ONNX graph)."),
    verify: bool = typer.Option(False, "--verify", rich_help_panel=QUALITY, help="Check PyTorch vs ONNX Runtime vs OpenVINO on random weights at two shapes; exit 1 if outside tolerance."),
    force: bool = typer.Option(False, "-y", "--force", rich_help_panel=EXPORT, help="Replace an existing output (-y as in ffmpeg and gvr upscale)."),
    vae: Optional[Path] = typer.Option(None, "--vae", metavar="FILE", rich_help_panel=MODEL, help="Wan2.1 VAE .safetensors (diffusers format): export a latent-cascade bundle, the folder --out, with the VAE's graphs."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="One JSON object per line on stdout: start, progress (each stage and heartbeat), summary."),
    progress_interval: float = typer.Option(10.0, "--progress-interval", metavar="SECONDS", rich_help_panel=FARM, help="Heartbeat: a 'status:' line (or a JSON progress event) at least this often while a stage runs (0 = every 0.1 s)."),
) -> None:
    """Export the denoiser step to ONNX or OpenVINO IR (runs without torch afterwards)."""
    if not (math.isfinite(progress_interval) and progress_interval >= 0):
        ExportEvents(as_json, 0).fail(f"--progress-interval must be a finite number >= 0 (got {progress_interval})", 2)
    events = ExportEvents(as_json, progress_interval)
    try:
        static_shape = _parse_shape(shape)
    except ValueError as e:
        events.fail(str(e), 2)
    missing = missing_export_modules() + (["diffusers"] if vae is not None and _missing("diffusers") else [])
    if missing:  # the runtime-only install (the README's first command) has none of them
        events.fail(f"gvr export needs the export extra, which is not installed (missing: {', '.join(missing)}): {EXTRA_HINT}", 2)
    try:
        from export import ExportError
    except ImportError as e:
        events.fail(f"gvr export needs the export extra ({EXTRA_HINT}): {e}", 2)
    events.start(target=target, out=str(out) if out is not None else None, precision=precision, verify=verify, bundle=vae is not None)
    with _stop_on_signals():  # a signal leaves nothing beside --out
        try:
            if vae is not None:
                summary, lines, ok = _export_bundle(target, out, vae, config, weights, precision, verify, force, dynamic, opset, attention, ov_source, events)
            else:
                summary, lines, ok = _export_model(
                    target, out, config=config, weights=weights, scale=scale, precision=precision, dynamic=dynamic,
                    static_shape=static_shape, force=force, verify=verify, opset=opset, attention=attention, source=ov_source, on_stage=events,
                )
        except ExportError as e:
            events.fail(str(e), e.exit_code)
        except ImportError as e:  # an extra's module that is present but broken
            events.fail(f"gvr export needs the export extra ({EXTRA_HINT}): {e}", 2)
        except typer.Exit:
            raise
        except Exception as e:  # a fault no check foresaw: still one line, the JSON summary and exit 1
            from gvrbase.errors import first_line

            events.fail(f"internal error ({first_line(e)})", 1)
        events.finish({**summary, "exit_code": 0 if ok else 1, "error": None if ok else VERIFY_FAILED}, lines)
    if not ok:
        sys.stderr.write(error_line(VERIFY_FAILED) + "\n")
        raise typer.Exit(1)


VERIFY_FAILED = "verification failed: a backend is outside its tolerance against PyTorch"


def _model_facts(manifest) -> dict:
    return {"untrained": manifest.untrained, "model_note": manifest.note or None}


def _export_model(target, out, **kwargs) -> tuple[dict, list[str], bool]:
    """One model's graphs (``export.export_model``): the JSON summary, the lines to print, verified."""
    from export import export_model

    report = export_model(target, out, **kwargs)
    verify = report.verify
    summary = {
        "target": target, "path": str(report.path), "main_file": str(report.main_file), "files": [str(f) for f in report.files],
        "size_bytes": report.size_bytes, "export_seconds": round(report.seconds, 3), "precision": report.precision,
        "dynamic": report.dynamic, "attention": report.attention, **_model_facts(report.manifest),
        "verified": None if verify is None else verify.ok, "verify": None if verify is None else verify.lines(),
    }
    lines = [report.summary(), *(["  " + line for line in verify.lines()] if verify is not None else [])]
    if report.manifest.note:
        lines.append(f"  {report.manifest.note}")
    return summary, lines, verify is None or verify.ok


def _export_bundle(target, out, vae, config, weights, precision, verify, force, dynamic, opset, attention, ov_source, on_stage):
    """``--vae``: the denoiser and the VAE's graphs in one folder (``export.bundle``)."""
    from export import ExportError
    from export.bundle import export_bundle

    if out is None:
        raise ExportError("--vae writes a bundle folder: give it with --out BUNDLE/")
    if not dynamic:
        raise ExportError("--vae bundles are dynamic (any clip size); --static is for single-graph exports")
    report = export_bundle(
        target, out, vae_weights=vae, config=config, weights=weights, precision=precision, force=force,
        verify=verify, opset=opset, attention=attention, source=ov_source, on_stage=on_stage,
    )
    summary = {
        "target": target, "path": str(report.path), "main_file": str(report.main_file), "files": sorted(str(f) for f in report.path.iterdir()),
        "precision": precision, **_model_facts(report.denoiser.manifest),
        "verified": report.verified if verify else None, "verify": report.verify_lines if verify else None,
    }
    lines = [report.summary(), *("  " + line for line in report.verify_lines)]
    if report.denoiser.manifest.note:
        lines.append(f"  {report.denoiser.manifest.note}")
    return summary, lines, report.verified
