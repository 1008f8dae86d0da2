"""Export targets, table-driven (in the manner of ultralytics' exporter).

One table row per target: output suffix, whether the output is a folder, the options it takes.
Each target is one function that writes into a staging path; ``export_model`` refuses options a
target does not take and bad inputs before any work, stages the output (nothing half-written),
times the export, writes the manifest into the artefact, and optionally verifies it.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from export.errors import ExportError
from export.spec import DEFAULT_OPSET, MIN_OPSET, PRECISIONS, TRACE_SHAPE, DenoiserSpec

OV_SOURCES = ("torch", "onnx")
# Library option -> the CLI flag a user typed, for refusals.
FLAGS = {"source": "--ov-source", "opset": "--opset", "attention": "--attention"}


# --------------------------------------------------------------------------------------------------
# What an export returns
# --------------------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    target: str
    path: Path  # the .onnx file, or the OpenVINO folder
    files: list[Path]
    seconds: float
    size_bytes: int
    precision: str
    dynamic: bool
    static_shape: tuple[int, int, int] | None
    attention: str  # "fused" | "unfused"
    attention_calls: int  # attention calls in one denoiser step (one per block)
    fused_attention_nodes: int  # ONNX Attention nodes (onnx), or SDPA ops (openvino IR)
    manifest: object
    options: dict = field(default_factory=dict)
    verify: object = None  # export.verify.VerifyReport when verification ran

    def summary(self) -> str:
        shape = "dynamic T,H,W" if self.dynamic else f"static T,h,w={self.static_shape}"
        return (
            f"{self.target}: {self.path} ({self.size_bytes / 1e6:.1f} MB, {self.seconds:.1f} s, {self.precision}, {shape}, "
            f"{self.fused_attention_nodes}/{self.attention_calls} attention calls as fused nodes, {self.attention} attention)"
        )


# --------------------------------------------------------------------------------------------------
# Building blocks shared by the targets
# --------------------------------------------------------------------------------------------------


def _trace_inputs(model, dynamic: bool, static_shape):
    import torch

    cfg = model.config
    spec = DenoiserSpec(cfg.latent_channels, cfg.scale)
    T, h, w = TRACE_SHAPE if dynamic else static_shape
    return spec, {k: torch.from_numpy(v) for k, v in spec.dummy_inputs(T, h, w).items()}


@contextlib.contextmanager
def _quiet():
    """The torch exporter's chatter (deprecations, torchvision absence) is not the user's business."""
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._export").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_onnx(model, *, dynamic: bool, static_shape, opset: int, attention: str):
    """Trace one denoiser step into an ``torch.onnx.ONNXProgram`` with our attention translation."""
    import torch

    from export.attention import attention_as_custom_op, translation_table
    from export.spec import DYNAMIC_AXES

    spec, inputs = _trace_inputs(model, dynamic, static_shape)
    # String axis names become Dim.DYNAMIC (relations such as H = scale*h are inferred) and name the
    # graph's symbolic dims. Batch stays 1: the runtime upscales one clip at a time, and a dynamic
    # batch adds guards torch.export cannot express (B <= 2 from broadcasting against 1).
    dynamic_shapes = {k: (dict(v) or None) for k, v in DYNAMIC_AXES.items()} if dynamic else None
    try:
        with _quiet(), attention_as_custom_op(), torch.no_grad():
            program = torch.onnx.export(
                model,
                (),
                kwargs=inputs,
                dynamo=True,
                opset_version=opset,
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=translation_table(attention),
                optimize=True,
                verbose=False,
            )
    except Exception as e:  # the exporter's errors are long; keep the first line of the cause
        raise ExportError(f"ONNX export failed: {_first_line(e)}") from e
    return program


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


# Above this, ONNX's 2 GB protobuf limit needs the weights in a file beside the graph.
EXTERNAL_DATA_BYTES = 1_800_000_000


def save_onnx(program, path: Path, manifest, precision: str) -> list[Path]:
    import onnx

    from models.manifest import MANIFEST_KEY

    manifest.validate("export")
    program.model.metadata_props[MANIFEST_KEY] = manifest.to_json()
    weights_bytes = sum(v.const_value.nbytes for v in program.model.graph.initializers.values() if v.const_value is not None)
    if weights_bytes > EXTERNAL_DATA_BYTES:
        program.save(str(path), external_data=True)  # fp16 halves the file; past 2 GB we keep fp32
    else:
        proto = program.model_proto
        if precision == "fp16":
            compress_weights_fp16(proto)
        onnx.save(proto, str(path))
    return [p for p in sorted(path.parent.iterdir()) if p.name.startswith(path.name)]


def compress_weights_fp16(proto) -> None:
    """Store float weights as fp16, each followed by a Cast to fp32 that runtimes fold at load time.

    Half the file, fp32 arithmetic (ONNX Runtime's CPU provider has few fp16 kernels). A true
    half-precision graph is not offered: torch 2.13's exporter turns the fp32 RMSNorm island of an
    fp16 network into an RMSNormalization node with mismatched types, which ONNX Runtime rejects.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for init in proto.graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 64:  # scalars stay fp32
            continue
        name = init.name
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}.fp16")
        init.CopyFrom(half)  # in place: init is the graph's own entry
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}.to_fp32"))
    nodes = casts + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def _check_onnx_dynamic(path: Path, dynamic: bool) -> None:
    """torch.export may specialise a dimension it was told is dynamic; refuse such a graph."""
    import onnx

    from export.spec import DYNAMIC_AXES

    if not dynamic:
        return
    proto = onnx.load(str(path), load_external_data=False)
    for inp in proto.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for axis in DYNAMIC_AXES.get(inp.name, {}):
            if dims[axis].HasField("dim_value"):
                raise ExportError(f"export specialised {inp.name} axis {axis} to {dims[axis].dim_value}; the graph would not be dynamic")


def _manifest(model, *, precision, dynamic, static_shape, extra):
    from models import __version__

    return model.manifest(
        gvr_version=__version__,
        precision=precision,
        dynamic=dynamic,
        static_shape=None if dynamic else tuple(static_shape),
        extra=extra,
    )


# --------------------------------------------------------------------------------------------------
# The targets
# --------------------------------------------------------------------------------------------------


def export_onnx(model, stage: Path, *, stem: str, dynamic, static_shape, precision, opset=DEFAULT_OPSET, attention="fused"):
    """One ``.onnx`` file (weights inside unless over 2 GB)."""
    from export.graph_checks import onnx_fused_attention_nodes

    program = build_onnx(model, dynamic=dynamic, static_shape=static_shape, opset=opset, attention=attention)
    manifest = _manifest(
        model, precision=precision, dynamic=dynamic, static_shape=static_shape,
        extra={"target": "onnx", "opset": opset, "attention_form": attention, "batch": 1},
    )
    files = save_onnx(program, stage, manifest, precision)
    _check_onnx_dynamic(stage, dynamic)
    return files, manifest, onnx_fused_attention_nodes(stage)


def _openvino_inputs(spec: DenoiserSpec, dynamic: bool, static_shape):
    import openvino as ov

    if not dynamic:
        return [(k, ov.PartialShape(list(v))) for k, v in spec.input_shapes(*static_shape).items()]
    C = spec.channels
    video = ov.PartialShape([1, C, -1, -1, -1])
    return [("z_t", video), ("t", ov.PartialShape([1])), ("lr", video), ("lr_noise", video), ("noise_aug", ov.PartialShape([1]))]


def _name_openvino_tensors(ov_model, spec: DenoiserSpec) -> None:
    """Give the IR's output tensor its manifest name (``velocity``): OpenVINO's PyTorch frontend
    leaves it unnamed, and the runtime addresses the output by name."""
    for port, name in zip(ov_model.outputs, spec.output_names):
        if name not in port.get_names():
            port.get_tensor().set_names({name, *port.get_names()})


def export_openvino(model, stage: Path, *, stem: str, dynamic, static_shape, precision, source="torch", opset=DEFAULT_OPSET, attention="fused"):
    """OpenVINO IR (``.xml`` + ``.bin``) in a folder.

    ``source="torch"`` converts the PyTorch module directly (OpenVINO's PyTorch frontend turns the
    SDPA call into its ScaledDotProductAttention op); ``source="onnx"`` converts our ONNX graph
    (its Attention node becomes the same op). Both verify; see the README for which runs faster.
    ``precision="fp16"`` compresses the weights to fp16 (the CPU plugin still computes in fp32).
    Both sources start from the fp32 network.
    """
    import openvino as ov

    from export.metadata import write_openvino

    spec, inputs = _trace_inputs(model, dynamic, static_shape)
    try:
        if source == "torch":
            if attention != "fused":
                raise ExportError("--attention unfused needs --ov-source onnx (the PyTorch frontend always emits fused SDPA)")
            import torch

            with _quiet(), torch.no_grad():
                ov_model = ov.convert_model(model, example_input=inputs, input=_openvino_inputs(spec, dynamic, static_shape))
            # The PyTorch frontend leaves the output unnamed; the runtime asks for it by name.
            ov_model.outputs[0].get_tensor().set_names({"velocity"})
        else:
            with tempfile.TemporaryDirectory(dir=stage.parent) as tmp:
                onnx_path = Path(tmp) / "denoiser.onnx"
                program = build_onnx(model, dynamic=dynamic, static_shape=static_shape, opset=opset, attention=attention)
                program.save(str(onnx_path))
                ov_model = ov.convert_model(str(onnx_path))
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"OpenVINO conversion failed: {_first_line(e)}") from e
    _name_openvino_tensors(ov_model, spec)
    manifest = _manifest(
        model, precision=precision, dynamic=dynamic, static_shape=static_shape,
        extra={"target": "openvino", "source": source, "attention_form": attention, "batch": 1},
    )
    write_openvino(ov_model, manifest)
    stage.mkdir(parents=True, exist_ok=True)
    xml = stage / f"{stem}.xml"
    ov.save_model(ov_model, str(xml), compress_to_fp16=precision == "fp16")
    sdpa = sum(op.get_type_name() == "ScaledDotProductAttention" for op in ov_model.get_ops())
    return sorted(stage.iterdir()), manifest, sdpa


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str  # default output suffix (a folder for openvino)
    is_dir: bool
    options: frozenset  # target-specific options it takes, beyond the common ones
    run: Callable


TARGETS: dict[str, Target] = {
    "onnx": Target("onnx", ".onnx", False, frozenset({"opset", "attention"}), export_onnx),
    "openvino": Target("openvino", "_openvino", True, frozenset({"source", "opset", "attention"}), export_openvino),
}


def _timed(fn):
    """Time a target, measure what it wrote, and re-raise failures as one-line ExportErrors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        files, manifest, fused = fn(*args, **kwargs)
        size = sum(f.stat().st_size for f in files if f.is_file())
        return files, manifest, fused, time.perf_counter() - start, size

    return wrapper


def default_out(target: str, name: str, scale: int, precision: str, dynamic: bool) -> Path:
    tail = ("" if precision == "fp32" else f"-{precision}") + ("" if dynamic else "-static")
    return Path(f"gvr-{name}-x{scale}{tail}{TARGETS[target].suffix}")


def export_model(
    target: str,
    out: str | Path | None = None,
    *,
    config: str | None = None,
    weights: str | Path | None = None,
    model=None,
    scale: int | None = None,
    precision: str = "fp32",
    dynamic: bool = True,
    static_shape: tuple[int, int, int] | None = None,
    force: bool = False,
    verify: bool = False,
    **options,
) -> ExportReport:
    """Export one denoiser step of a SimpleGVR network to ``target`` and return a report.

    The network is ``model`` if given, else built from ``config`` / ``weights`` (``export.sources``).
    ``static_shape`` = (T, h, w) of the LR latent for ``dynamic=False``. Target options: ``opset``,
    ``attention`` ("fused" | "unfused", the explicit fallback) and, for openvino, ``source``.
    With ``verify`` the export is checked against PyTorch on random weights (``export.verify``).
    """
    from export.atomic import check_writable, staged
    from export.attention import ATTENTION_FORMS, attention_calls
    from export.sources import load_source

    # Refuse everything we can before any work.
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    spec = TARGETS[target]
    refused = sorted(k for k, v in options.items() if v is not None and k not in spec.options)
    if refused:
        raise ExportError(f"target {target} does not take {', '.join(FLAGS.get(k, k) for k in refused)}")
    options = {k: v for k, v in options.items() if v is not None}
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if options.get("attention", "fused") not in ATTENTION_FORMS:
        raise ExportError(f"attention must be one of {', '.join(ATTENTION_FORMS)}, got {options['attention']!r}")
    if options.get("source", "torch") not in OV_SOURCES:
        raise ExportError(f"OpenVINO source must be one of {', '.join(OV_SOURCES)}, got {options['source']!r}")
    if options.get("opset", MIN_OPSET) < MIN_OPSET:
        raise ExportError(f"opset {options['opset']} is too old: the fused Attention op needs opset >= {MIN_OPSET}")
    if dynamic and static_shape is not None:
        raise ExportError("a static shape was given for a dynamic export (use --static)")
    if not dynamic:
        if static_shape is None or len(static_shape) != 3 or min(static_shape) < 1:
            raise ExportError("a static export needs its size: --shape T,h,w of the low-resolution latent")
        static_shape = tuple(int(v) for v in static_shape)
    if out is not None:
        check_writable(Path(out), force)
    if model is None:
        source = load_source(config, None if weights is None else str(weights), scale)
        model, name = source.model, source.name
    else:
        name = "model"
        if scale is not None and scale != model.config.scale:
            raise ExportError(f"model has scale {model.config.scale}, not {scale}")
    out = Path(out) if out is not None else default_out(target, name, model.config.scale, precision, dynamic)
    check_writable(out, force)

    kwargs = dict(dynamic=dynamic, static_shape=static_shape, precision=precision, **options)
    stem = out.name.removesuffix(spec.suffix) if spec.is_dir else out.stem
    with staged(out, force, is_dir=spec.is_dir) as stage:
        _, manifest, fused, seconds, size = _timed(spec.run)(model, stage, stem=stem, **kwargs)
    files = sorted(out.iterdir()) if spec.is_dir else sorted(p for p in out.parent.iterdir() if p.name.startswith(out.name))
    report_verify = None
    if verify:
        from export.verify import verify_export

        report_verify = verify_export(target, model, **kwargs)
    return ExportReport(
        target=target,
        path=out,
        files=files,
        seconds=seconds,
        size_bytes=size,
        precision=precision,
        dynamic=dynamic,
        static_shape=static_shape,
        attention=options.get("attention", "fused"),
        attention_calls=attention_calls(model.config),
        fused_attention_nodes=fused,
        manifest=manifest,
        options=options,
        verify=report_verify,
    )
