"""``gvr export``: the thin command over ``export.export_model`` (library first, CLI thin).

torch and the exporter are imported inside the command body only, so ``gvrcli.cli`` (the
runtime, which must not need torch) can register this command without importing them.
Exit codes: 0 exported (and verified, if asked) · 1 a backend outside its tolerance · 2 bad input
(unknown config, wrong checkpoint, unwritable or existing output, bad option), nothing written.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"gvr: error: {' '.join(str(message).split())}\n")
    raise typer.Exit(code)


@contextlib.contextmanager
def _stop_on_signals():
    """SIGINT/SIGTERM end an export with exit 128 + signal and nothing left beside ``--out``: the
    handler removes this process's staging folders (``.NAME.*.part/``) itself and exits, since an
    exception raised from it inside the exporter's C++ callbacks may be swallowed there."""
    from gvrcli.farm import atomic

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
        _fail(f"--shape must be T,h,w (frames, height, width of the low-resolution input), got {text!r}")
    return T, h, w


def export_command(
    target: str = typer.Option(..., "--target", help="onnx | openvino."),
    config: Optional[str] = typer.Option(None, "--config", help="tiny | base | a JSON file of model settings. Default: tiny, or the checkpoint's own config."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A SimpleGVR .safetensors checkpoint. Default: the built-in (untrained) default."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output .onnx file, or folder for OpenVINO IR. Default: gvr-NAME-xSCALE.onnx / gvr-NAME-xSCALE_openvino/."),
    scale: Optional[int] = typer.Option(None, "--scale", help="2 or 4 (built-in default and presets; a checkpoint keeps its own)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 | bf16 (a half-precision graph, fp32 I/O; for GPUs) | int8."),
    dynamic: bool = typer.Option(True, "--dynamic/--static", help="Any T, H, W (default), or one declared size (--shape)."),
    shape: Optional[str] = typer.Option(None, "--shape", help="T,h,w of the low-resolution latent for --static, e.g. 8,270,480."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (>= 23, where the fused Attention op exists)."),
    attention: Optional[str] = typer.Option(None, "--attention", help="fused (default for fp32) | aligned (default for fp16/bf16: equal q/k/v head sizes, what ONNX Runtime CUDA's Flash kernel takes) | unfused: explicit fallback for runtimes without a fused attention op."),
    ov_source: Optional[str] = typer.Option(None, "--ov-source", help="openvino only: torch (default, converts the PyTorch module) | onnx (converts our ONNX graph)."),
    verify: bool = typer.Option(False, "--verify", help="Check PyTorch vs ONNX Runtime vs OpenVINO on random weights at two shapes; exit 1 if outside tolerance."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    vae: Optional[Path] = typer.Option(None, "--vae", help="Wan2.1 VAE .safetensors (diffusers format): export a latent-cascade bundle, the folder --out, with the VAE's graphs."),
) -> None:
    """Export the denoiser step to ONNX or OpenVINO IR (runs without torch afterwards)."""
    static_shape = _parse_shape(shape)
    missing = missing_export_modules() + (["diffusers"] if vae is not None and _missing("diffusers") else [])
    if missing:  # the runtime-only install (the README's first command) has none of them
        _fail(f"gvr export needs the export extra, which is not installed (missing: {', '.join(missing)}): "
              "pip install -e '.[export]' (from the gvr checkout)")
    try:
        import export  # noqa: F401  (present but broken: say so before any work)
    except ImportError as e:
        _fail(f"gvr export needs the export extra (pip install -e '.[export]'): {e}")
    with _stop_on_signals():
        _export(target, out, vae, config, weights, scale, precision, dynamic, static_shape, verify, force, opset, attention, ov_source)


def _export(target, out, vae, config, weights, scale, precision, dynamic, static_shape, verify, force, opset, attention, ov_source) -> None:
    from export import ExportError, export_model

    if vae is not None:
        return _export_bundle(target, out, vae, config, weights, precision, verify, force, dynamic, opset, attention, ov_source)
    try:
        report = export_model(
            target,
            out,
            config=config,
            weights=weights,
            scale=scale,
            precision=precision,
            dynamic=dynamic,
            static_shape=static_shape,
            force=force,
            verify=verify,
            opset=opset,
            attention=attention,
            source=ov_source,
        )
    except ExportError as e:
        _fail(str(e), e.exit_code)
    except ImportError as e:  # an extra's module that is present but broken
        _fail(f"gvr export needs the export extra (pip install -e '.[export]'): {e}")
    typer.echo(report.summary())
    if report.verify is not None:
        for line in report.verify.lines():
            typer.echo("  " + line)
        if not report.verify.ok:
            _fail("verification failed: a backend is outside its tolerance against PyTorch", 1)


def _export_bundle(target, out, vae, config, weights, precision, verify, force, dynamic, opset, attention, ov_source) -> None:
    """``--vae``: the denoiser and the VAE's graphs in one folder (``export.bundle``)."""
    from export import ExportError
    from export.bundle import export_bundle

    if out is None:
        _fail("--vae writes a bundle folder: give it with --out BUNDLE/")
    if not dynamic:
        _fail("--vae bundles are dynamic (any clip size); --static is for single-graph exports")
    try:
        report = export_bundle(
            target, out, vae_weights=vae, config=config, weights=weights, precision=precision, force=force,
            verify=verify, opset=opset, attention=attention, source=ov_source,
        )
    except ExportError as e:
        _fail(str(e), e.exit_code)
    except ImportError as e:
        _fail(f"gvr export needs the export extra (pip install -e '.[export]'): {e}")
    typer.echo(report.summary())
    for line in report.verify_lines:
        typer.echo("  " + line)
    if not report.verified:
        _fail("verification failed: a backend is outside its tolerance against PyTorch", 1)
