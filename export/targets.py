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
from export.progress import OnStage, prefixed, silent
from export.spec import DEFAULT_OPSET, DENOISER_PRECISIONS, MIN_OPSET, TRACE_HR, TRACE_SHAPE, VERIFY_SHAPES, DenoiserSpec
from export.verify import VerifyReport, backends_for, compare, graph_files
from gvrbase.errors import first_line
from models.manifest import STEP, companion_name, graph_sha256

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
    attention: str  # "fused" | "aligned" | "unfused"
    attention_calls: int  # attention calls in one denoiser step (one per block)
    fused_attention_nodes: int  # ONNX Attention nodes (onnx), or SDPA ops (openvino IR)
    manifest: object
    options: dict = field(default_factory=dict)
    verify: object = None  # export.verify.VerifyReport when verification ran

    @property
    def main_file(self) -> Path:
        """The file to run (``--model``): the .onnx, or the OpenVINO step graph's .xml; the
        companion graphs the manifest names sit beside it."""
        companions = {g["file"] for g in self.manifest.graphs.values()}
        return next(f for f in self.files if f.suffix in (".onnx", ".xml") and f.name not in companions)

    def summary(self) -> str:
        shape = "dynamic T,H,W" if self.dynamic else f"static T,h,w={self.static_shape}"
        return (
            f"{self.target}: {self.path} ({self.size_bytes / 1e6:.1f} MB, {self.seconds:.1f} s, {self.precision}, {shape}, "
            f"{self.fused_attention_nodes}/{self.attention_calls} attention calls as fused nodes, {self.attention} attention)"
        )


# --------------------------------------------------------------------------------------------------
# Building blocks shared by the targets
# --------------------------------------------------------------------------------------------------


def _spec(model) -> DenoiserSpec:
    return DenoiserSpec.of(model.config)


def _trace_inputs(model, role: str, dynamic: bool, static_shape):
    import torch

    spec = _spec(model)
    T, h, w = TRACE_SHAPE if dynamic else static_shape
    feed = spec.dummy_inputs(role, T, h, w, hr=TRACE_HR if dynamic else None)
    return spec, {k: torch.from_numpy(v) for k, v in feed.items()}


@contextlib.contextmanager
def _quiet():
    """The torch exporter's chatter (deprecations, torchvision absence) is not the user's business."""
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._export").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_onnx(model, role: str = STEP, *, dynamic: bool, static_shape, opset: int, attention: str):
    """Trace one graph of the model (``role``: step, condition or text) into an ``torch.onnx.ONNXProgram``
    with our attention translation."""
    import torch

    from export.attention import attention_as_custom_op, translation_table
    from export.graphs import graph_module
    from export.spec import DYNAMIC_AXES

    spec, inputs = _trace_inputs(model, role, dynamic, static_shape)
    input_names, output_names = spec.names(role)
    # String axis names become Dim.DYNAMIC (relations such as H = scale*h are inferred) and name the
    # graph's symbolic dims. Batch stays 1: the runtime upscales one clip at a time, and a dynamic
    # batch adds guards torch.export cannot express (B <= 2 from broadcasting against 1).
    dynamic_shapes = {k: (dict(DYNAMIC_AXES[k]) or None) for k in input_names} if dynamic else None
    try:
        with _quiet(), attention_as_custom_op(), torch.no_grad():
            program = torch.onnx.export(
                graph_module(model, role),
                (),
                kwargs=inputs,
                dynamo=True,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=translation_table(attention),
                optimize=True,
                verbose=False,
            )
    except Exception as e:  # the exporter's errors are long; keep the first line of the cause
        raise ExportError(f"ONNX export of the {role} graph failed: {first_line(e)}") from e
    return program


# Above this, ONNX's 2 GB protobuf limit needs the weights in a file beside the graph.
EXTERNAL_DATA_BYTES = 1_800_000_000


def save_onnx(program, path: Path, manifest) -> list[Path]:
    import onnx

    from models.manifest import MANIFEST_KEY

    if manifest is not None:  # the main (step) graph carries the manifest; companions do not
        manifest.validate("export")
        program.model.metadata_props[MANIFEST_KEY] = manifest.to_json()
    weights_bytes = sum(v.const_value.nbytes for v in program.model.graph.initializers.values() if v.const_value is not None)
    if weights_bytes > EXTERNAL_DATA_BYTES:
        program.save(str(path), external_data=True)
    else:
        onnx.save(program.model_proto, str(path))
    return [path]


def compress_weights_fp16(proto) -> None:
    """Store float weights as fp16, each followed by a Cast to fp32 that runtimes fold at load time:
    half the file, fp32 arithmetic (the VAE export's fp16; the denoiser's fp16 is a true
    half-precision graph, ``network_for``)."""
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


# Half-precision exports: the network computes in this dtype (``SimpleGVR.to_compute_dtype``).
HALF = {"fp16": "float16", "bf16": "bfloat16"}


def network_for(model, precision: str):
    """The module to trace for ``precision``: for fp16/bf16 a copy whose transformer is in half
    precision, its ``FP32_MODULES`` (the condition path) and dtype-safe layers in fp32.

    The graph's inputs and outputs stay fp32, with Casts inside: the runtime's latent buffers,
    the Euler update (z accumulates over up to 50 steps: fp16's 11-bit mantissa would lose the
    small late updates), the NaN guard and the colour fix all stay fp32, and no runtime has to
    convert I/O. The Casts are elementwise passes over z and cond, a few % of a step at most.
    """
    if precision not in HALF:
        return model
    import copy

    import torch

    return copy.deepcopy(model).to_compute_dtype(getattr(torch, HALF[precision]))


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


def _manifest(model, *, precision, dynamic, static_shape, extra, graphs, vae=None):
    """``vae``: a bundle's VAE graphs ({"graphs": role -> {file, sha256}, "weights_sha256"}), recorded
    beside the condition graph so the runtime refuses a bundle whose VAE files were swapped."""
    from models import __version__

    if vae is not None:
        graphs = {**graphs, **vae["graphs"]}
    return model.manifest(
        vae_weights_sha256=vae["weights_sha256"] if vae is not None else "",
        gvr_version=__version__,
        precision=precision,
        dynamic=dynamic,
        static_shape=None if dynamic else tuple(static_shape),
        extra=extra,
        graphs=graphs,
    )


def _companions(paths: dict[str, Path]) -> dict:
    """The manifest's ``graphs`` entry for companion files already written: name and hash."""
    return {role: {"file": path.name, "sha256": graph_sha256(path)} for role, path in paths.items()}


# --------------------------------------------------------------------------------------------------
# The targets
# --------------------------------------------------------------------------------------------------


def export_onnx(
    model, stage: Path, *, stem: str, dynamic, static_shape, precision, opset=DEFAULT_OPSET, attention=None, vae=None, on_stage: OnStage = silent
):
    """The step graph at ``stage`` (carries the manifest) and its companions beside it: the
    condition graph (``NAME.condition.onnx``) and, for a model with a text path, the text graph
    (``NAME.text.onnx``). ``fp16``/``bf16`` trace the network in half precision (``network_for``;
    fp32 I/O); ``int8`` quantises the step graph's weights with ONNX Runtime's tools (the
    companions' few layers stay fp32)."""
    from export.attention import default_form
    from export.graph_checks import onnx_fused_attention_nodes

    attention = attention or default_form(precision)
    network = network_for(model, precision)
    build = dict(dynamic=dynamic, static_shape=static_shape, opset=opset, attention=attention)
    companions = {}
    for role in _spec(model).roles():
        if role == STEP:
            continue
        companions[role] = stage.with_name(companion_name(stage.name, role))
        on_stage(f"tracing {role} graph")
        program = build_onnx(network, role, **build)
        on_stage(f"writing {companions[role].name}")
        save_onnx(program, companions[role], None)
        _check_onnx_dynamic(companions[role], dynamic)
    extra = {"target": "onnx", "opset": opset, "attention_form": attention, "batch": 1}
    if precision in HALF:
        extra["compute"] = precision  # a true half-precision graph (older fp16 exports: fp16 weights only)
    manifest = _manifest(
        model, precision=precision, dynamic=dynamic, static_shape=static_shape,
        extra=extra, graphs=_companions(companions), vae=vae,
    )
    on_stage(f"tracing {STEP} graph")
    step = build_onnx(network, STEP, **build)
    on_stage(f"writing {stage.name}")
    if precision == "int8":
        from export.quantize import quantize_onnx

        save_onnx(step, stage, None)
        on_stage(f"quantizing {STEP} graph")
        quantize_onnx(stage, manifest)
    else:
        save_onnx(step, stage, manifest)
    _check_onnx_dynamic(stage, dynamic)
    return [stage, *companions.values()], manifest, onnx_fused_attention_nodes(stage)


def _openvino_inputs(spec: DenoiserSpec, role: str, dynamic: bool, static_shape):
    import openvino as ov

    from export.spec import DYNAMIC_AXES

    shapes = spec.input_shapes(role, *(static_shape or TRACE_SHAPE))
    if dynamic:  # batch 1; the named axes (T, H, W, or T, h, w, or the prompt's length) free
        shapes = {k: tuple(-1 if axis in DYNAMIC_AXES[k] else n for axis, n in enumerate(v)) for k, v in shapes.items()}
    return [(k, ov.PartialShape(list(v))) for k, v in shapes.items()]


def _convert_openvino(model, role: str, stage: Path, *, dynamic, static_shape, source, opset, attention):
    """One graph of the model as an ``openvino.Model`` whose outputs carry the graph_io names."""
    import openvino as ov

    from export.graphs import graph_module

    spec, inputs = _trace_inputs(model, role, dynamic, static_shape)
    if source == "torch":
        if attention != "fused":
            raise ExportError("--attention unfused needs --ov-source onnx (the PyTorch frontend always emits fused SDPA)")
        import torch

        with _quiet(), torch.no_grad():
            ov_model = ov.convert_model(
                graph_module(model, role), example_input=inputs, input=_openvino_inputs(spec, role, dynamic, static_shape)
            )
    else:
        with tempfile.TemporaryDirectory(dir=stage.parent) as tmp:
            onnx_path = Path(tmp) / f"{role}.onnx"
            build_onnx(model, role, dynamic=dynamic, static_shape=static_shape, opset=opset, attention=attention).save(str(onnx_path))
            ov_model = ov.convert_model(str(onnx_path))
    _name_openvino_tensors(ov_model, spec.names(role)[1])
    return ov_model


def _name_openvino_tensors(ov_model, names) -> None:
    """Give the IR's output tensors their manifest names (``graph_io``): OpenVINO's PyTorch frontend
    leaves them unnamed, and the runtime addresses the outputs by name."""
    for port, name in zip(ov_model.outputs, names):
        if name not in port.get_names():
            port.get_tensor().set_names({name, *port.get_names()})


def export_openvino(
    model, stage: Path, *, stem: str, dynamic, static_shape, precision, source="torch", opset=DEFAULT_OPSET, attention=None, vae=None,
    on_stage: OnStage = silent,
):
    """OpenVINO IR in a folder: the step graph ``NAME.xml`` + ``.bin`` (carries the manifest), the
    condition graph ``NAME.condition.xml`` + ``.bin`` and, with a text path, ``NAME.text.xml``.

    ``source="torch"`` converts the PyTorch module directly (OpenVINO's PyTorch frontend turns the
    SDPA call into its ScaledDotProductAttention op); ``source="onnx"`` converts our ONNX graph
    (its Attention node becomes the same op). Both verify; see the README for which runs faster.
    ``precision="fp16"`` compresses the weights to fp16 (the CPU plugin still computes in fp32);
    ``int8`` quantises the step graph with NNCF (weights and activations, calibrated on sampler
    inputs). Both sources start from the fp32 network.
    """
    import openvino as ov

    from export.metadata import write_openvino

    if precision == "bf16":
        raise ExportError("--precision bf16 is an ONNX export; OpenVINO computes bf16 from an fp32 IR at run time (gvr upscale --precision bf16)")
    attention = attention or "fused"
    convert = dict(dynamic=dynamic, static_shape=static_shape, source=source, opset=opset, attention=attention)
    def converting(role: str):
        on_stage(f"converting {role} graph")
        return _convert_openvino(model, role, stage, **convert)

    try:
        converted = {role: converting(role) for role in _spec(model).roles()}
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"OpenVINO conversion failed: {first_line(e)}") from e
    stage.mkdir(parents=True, exist_ok=True)
    step_model, companions = converted.pop(STEP), {}
    on_stage(f"writing {stem}.xml")
    for role, ov_model in converted.items():
        companions[role] = stage / companion_name(f"{stem}.xml", role)
        ov.save_model(ov_model, str(companions[role]), compress_to_fp16=precision == "fp16")
    manifest = _manifest(
        model, precision=precision, dynamic=dynamic, static_shape=static_shape,
        extra={"target": "openvino", "source": source, "attention_form": attention, "batch": 1},
        graphs=_companions(companions), vae=vae,
    )
    if precision == "int8":
        from export.quantize import quantize_openvino

        on_stage(f"quantizing {STEP} graph")
        step_model = quantize_openvino(step_model, model, dynamic=dynamic, static_shape=static_shape)
    write_openvino(step_model, manifest)
    ov.save_model(step_model, str(stage / f"{stem}.xml"), compress_to_fp16=precision == "fp16")
    sdpa = sum(op.get_type_name() == "ScaledDotProductAttention" for op in step_model.get_ops())
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
    vae: dict | None = None,
    on_stage: OnStage = silent,
    **options,
) -> ExportReport:
    """Export a SimpleGVR network (its step graph, and the condition graph beside it) to ``target``
    and return a report.

    The network is ``model`` if given, else built from ``config`` / ``weights`` (``export.sources``).
    ``static_shape`` = (T, h, w) of the LR latent for ``dynamic=False``. Target options: ``opset``,
    ``attention`` ("fused" | "unfused", the explicit fallback) and, for openvino, ``source``.
    With ``verify`` the export is checked against PyTorch on random weights (``export.verify``).
    ``vae``: the VAE graphs of a bundle to record in the manifest (``export.bundle``).
    ``on_stage(name, done, total)`` hears each stage as it starts (``export.progress``).
    """
    from export.outputs import check_writable, staged
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
    if precision not in DENOISER_PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(DENOISER_PRECISIONS)}, got {precision!r}")
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
        _, manifest, fused, seconds, size = _timed(spec.run)(model, stage, stem=stem, vae=vae, on_stage=on_stage, **kwargs)
    if spec.is_dir:
        files = sorted(out.iterdir())
    else:
        companions = [out.with_name(g["file"]) for g in manifest.graphs.values()]
        files = sorted({*companions, *(p for p in out.parent.iterdir() if p.name.startswith(out.name))})
    report_verify = None
    if verify:
        report_verify = verify_export(target, model, on_stage=on_stage, **kwargs)
    return ExportReport(
        target=target,
        path=out,
        files=files,
        seconds=seconds,
        size_bytes=size,
        precision=precision,
        dynamic=dynamic,
        static_shape=static_shape,
        attention=manifest.extra.get("attention_form", options.get("attention", "fused")),
        attention_calls=attention_calls(model.config),
        fused_attention_nodes=fused,
        manifest=manifest,
        options=options,
        verify=report_verify,
    )


def verify_export(
    target: str, model, *, seed: int = 0, shapes=None, threads: int = 0, on_stage: OnStage = silent, **export_kwargs
) -> VerifyReport:
    """Export a random-weight copy of ``model`` like ``export_model`` would and compare backends."""
    import copy

    from models.checkpoint import init_random_

    randomised = init_random_(copy.deepcopy(model), seed=seed).eval()
    dynamic = export_kwargs.get("dynamic", True)
    shapes = shapes or (VERIFY_SHAPES if dynamic else (export_kwargs["static_shape"],))
    spec = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="gvr-verify-") as tmp:
        stage = Path(tmp) / ("model" if spec.is_dir else "model.onnx")
        spec.run(randomised, stage, stem="model", on_stage=prefixed(on_stage, "verify: "), **export_kwargs)
        on_stage("verify: loading runtimes")
        graphs, skipped = {}, {}
        for role, path in graph_files(target, stage).items():
            graphs[role], skipped_here = backends_for(target, path, threads, export_kwargs.get("precision", "fp32"))
            for backend, why in skipped_here.items():  # per graph where the reasons differ
                skipped[backend] = why if skipped.get(backend, why) == why else f"{skipped[backend]}; {role} graph: {why}"
        return compare(randomised, graphs, shapes, export_kwargs.get("precision", "fp32"), seed, skipped, on_stage)
