"""Export the Wan2.1 VAE's chunk graphs to ONNX and OpenVINO IR, verified against PyTorch.

Four graphs, table-driven (``GRAPHS``): encoder and decoder, each as a first-chunk graph and a
later-chunk ("step") graph, with the causal caches as explicit inputs and outputs
(``models.vae.VaeEncoderStep`` / ``VaeDecoderStep``). Each graph carries a
``models.vae_manifest.VaeManifest``. ``export_vae`` writes the files (named ``vae_*``) into a
folder, which may already hold other artefacts (a bundle's denoiser): each file is staged and
renamed into place, an existing one is refused without ``force``. It returns a report with every
file's path and SHA-256, so a bundle can record them.

OpenVINO IR is converted from the same ONNX graph (OpenVINO's ONNX frontend), so both targets run
one traced graph.

**Height and width are dynamic** (``torch.export`` ``Dim``s on the latent grid: pixels are 8 h x 8 w,
every cache a fixed multiple of h x w), frames per chunk fixed. A bundle must run any clip size,
and the alternative, static graphs run on fixed-size spatial tiles, is not exact for this VAE: its
mid-block attention spans the whole frame, so no finite tile overlap reproduces the one-piece
result, and every tile would pay the overlap again. Measured (small random-weight VAE, traced at
4x6 latent cells, run by ONNX Runtime at 4x6 and at 7x11): max abs difference to PyTorch 3e-6 to
1e-5 at both sizes, for all four graphs; tracing takes about 2.5x longer than a static export
(78 vs 32 s for the decoder step on a loaded 2-core machine), a one-off cost.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.errors import ExportError
from export.progress import OnStage, silent
from export.spec import DEFAULT_OPSET, PRECISIONS, TOLERANCE, rel_l2
from gvrbase.errors import first_line
from models.vae_manifest import CACHE_OUT_SUFFIX

# --------------------------------------------------------------------------------------------------
# What is exported
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaeGraph:
    role: str  # manifest role, "vae_encoder" | "vae_decoder"
    chunk: str  # "first" | "step"
    stem: str  # file name without suffix
    module: str  # models.vae class
    input: str
    output: str
    frames_in: int  # per chunk (video frames for the encoder, latent frames for the decoder)

    @property
    def first(self) -> bool:
        return self.chunk == "first"

    def build(self, vae):
        import models.vae

        return getattr(models.vae, self.module)(vae, first=self.first).eval()

    @property
    def per_cell(self) -> int:
        """Input side per latent cell: 8 pixels for the encoder, 1 latent cell for the decoder."""
        return 8 if self.role == "vae_encoder" else 1

    def shapes(self, cells: tuple[int, int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, int]]:
        """(input shape, output shape, spatial size of the module's chunk input) for ``cells`` =
        (h, w) latent cells (-1, -1: the dynamic shapes a manifest declares)."""
        h, w = cells
        H, W = (8 * h, 8 * w) if h > 0 else (-1, -1)
        if self.role == "vae_encoder":
            frames_out = 1 if self.first else self.frames_in // 4
            return (1, 3, self.frames_in, H, W), (1, 16, frames_out, h, w), (H, W)
        frames_out = 1 if self.first else 4 * self.frames_in
        return (1, 16, self.frames_in, h, w), (1, 3, frames_out, H, W), (h, w)

    def dynamic_shapes(self, module):
        """torch.export's dynamic dims of (input, caches): every size a multiple of the latent grid."""
        from torch.export import Dim

        h, w = Dim("h", min=2, max=MAX_CELLS), Dim("w", min=2, max=MAX_CELLS)
        x = {3: self.per_cell * h, 4: self.per_cell * w}
        caches = []
        for spec in module.specs:
            k = spec.scale * self.per_cell  # cache side per latent cell: a whole number
            caches.append({3: int(k) * h, 4: int(k) * w})
        return (x,) if self.first else (x, tuple(caches))


# The trace's latent grid (not square, not 1: no dimension may specialise) and the largest one
# the graphs take (512 latent cells = 4096 pixels, the runtime's --max-pixels side).
TRACE_CELLS = (4, 6)
MAX_CELLS = 512

GRAPHS = (
    VaeGraph("vae_encoder", "first", "vae_encoder_first", "VaeEncoderStep", "pixels", "latents", 1),
    VaeGraph("vae_encoder", "step", "vae_encoder", "VaeEncoderStep", "pixels", "latents", 4),
    VaeGraph("vae_decoder", "first", "vae_decoder_first", "VaeDecoderStep", "latents", "pixels", 1),
    VaeGraph("vae_decoder", "step", "vae_decoder", "VaeDecoderStep", "latents", "pixels", 1),
)


@dataclass(frozen=True)
class VaeTarget:
    name: str
    suffixes: tuple[str, ...]  # files one graph writes
    run: object  # (module, graph, inputs, stage_dir, manifest, precision, opset) -> None


def _export_onnx(module, graph: VaeGraph, inputs, stage: Path, manifest, precision: str, opset: int) -> None:
    import onnx

    from export.metadata import write_onnx
    from export.targets import compress_weights_fp16

    proto = _trace(module, graph, inputs, opset).model_proto
    write_onnx(proto, manifest)
    if precision == "fp16":
        compress_weights_fp16(proto)
    onnx.save(proto, str(stage / f"{graph.stem}.onnx"))


def _export_openvino(module, graph: VaeGraph, inputs, stage: Path, manifest, precision: str, opset: int) -> None:
    import openvino as ov

    from export.metadata import write_openvino

    with tempfile.TemporaryDirectory(dir=stage) as tmp:
        onnx_path = Path(tmp) / f"{graph.stem}.onnx"
        _trace(module, graph, inputs, opset).save(str(onnx_path))
        try:
            ov_model = ov.convert_model(str(onnx_path))
        except Exception as e:
            raise ExportError(f"OpenVINO conversion of {graph.stem} failed: {first_line(e)}") from e
    write_openvino(ov_model, manifest)
    ov.save_model(ov_model, str(stage / f"{graph.stem}.xml"), compress_to_fp16=precision == "fp16")


TARGETS = {
    "onnx": VaeTarget("onnx", (".onnx",), _export_onnx),
    "openvino": VaeTarget("openvino", (".xml", ".bin"), _export_openvino),
}


def _trace(module, graph: VaeGraph, inputs, opset: int):
    import torch

    from export.targets import _quiet

    in_names = [graph.input] + ([] if graph.first else module.cache_names)
    out_names = [graph.output] + [n + CACHE_OUT_SUFFIX for n in module.cache_names]
    try:
        with _quiet(), torch.no_grad():
            return torch.onnx.export(
                module, tuple(torch.from_numpy(v) for v in inputs.values()), dynamo=True, opset_version=opset,
                input_names=in_names, output_names=out_names, dynamic_shapes=graph.dynamic_shapes(module),
                optimize=True, verbose=False,
            )
    except Exception as e:
        raise ExportError(f"ONNX export of {graph.stem} failed: {first_line(e)}") from e


def graph_inputs(module, graph: VaeGraph, cells=TRACE_CELLS, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of one graph at ``cells`` latent cells: pixels in [0, 1] or standard-normal
    latents, plus standard-normal caches."""
    rng = np.random.default_rng(seed)
    in_shape, _, chunk = graph.shapes(cells)
    x = rng.uniform(0, 1, in_shape) if graph.input == "pixels" else rng.standard_normal(in_shape)
    feed = {graph.input: x.astype(np.float32)}
    if not graph.first:
        for spec in module.specs:
            feed[spec.name] = rng.standard_normal(spec.shape(*chunk)).astype(np.float32)
    return feed


def graph_manifest(vae, module, graph: VaeGraph, precision: str, opset: int, target: str):
    from models import __version__
    from models.codec import get_codec
    from models.vae import vae_config, vae_sha256
    from models.vae_manifest import VaeManifest

    in_shape, out_shape, _ = graph.shapes((-1, -1))
    codec = get_codec("wan2.1")
    cfg = vae_config(vae)
    return VaeManifest(
        role=graph.role, chunk=graph.chunk, codec=codec.name, config=cfg,
        latent_channels=codec.channels, spatial_factor=codec.spatial_factor, temporal_factor=codec.temporal_factor,
        latents_mean=tuple(cfg["latents_mean"]), latents_std=tuple(cfg["latents_std"]),
        input=graph.input, output=graph.output, input_shape=in_shape, output_shape=out_shape,
        caches=tuple(s.to_dict(graph.per_cell) for s in module.specs), weights_sha256=vae_sha256(vae),
        gvr_version=__version__, precision=precision,
        extra={"target": target, "opset": opset, "batch": 1, "companion": _companion(graph)},
    )


def _companion(graph: VaeGraph) -> str:
    return next(g.stem for g in GRAPHS if g.role == graph.role and g is not graph)


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


@dataclass
class GraphFile:
    role: str
    chunk: str
    path: Path  # .onnx, or the OpenVINO .xml
    files: dict[Path, str]  # every file of the graph -> sha256 of its bytes
    manifest: object

    @property
    def sha256(self) -> str:
        """The graph's hash (``graph_sha256``: for IR, .xml then .bin)."""
        return graph_sha256(self.path)


@dataclass
class VaeExportReport:
    target: str
    out_dir: Path
    graphs: list[GraphFile]
    seconds: float
    precision: str
    weights_sha256: str
    verify: object = None  # export.verify.VerifyReport

    @property
    def files(self) -> dict[Path, str]:
        return {p: h for g in self.graphs for p, h in g.files.items()}

    def companions(self) -> dict[str, dict]:
        """role -> {file, sha256, files}: the graph mapping a bundle's manifest records (``sha256``
        as ``graph_sha256``; ``files``: each file's own hash).

        Roles: ``vae_encoder`` / ``vae_decoder`` (the step graphs) and ``vae_encoder_first`` /
        ``vae_decoder_first`` (``models.vae_manifest.graph_role``); file names are relative to the folder."""
        from models.vae_manifest import graph_role

        out = {}
        for g in self.graphs:
            out[graph_role(g.role, g.chunk)] = {"file": g.path.name, "sha256": g.sha256, "files": {p.name: h for p, h in g.files.items()}}
        return out

    def summary(self) -> str:
        size = sum(p.stat().st_size for p in self.files) / 1e6
        return f"{self.target}: {len(self.graphs)} VAE graphs in {self.out_dir} ({size:.1f} MB, {self.seconds:.1f} s, {self.precision}, any frame size)"


def export_vae(
    vae,
    target: str,
    out_dir: str | Path,
    *,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    verify: bool = False,
    on_stage: OnStage = silent,
) -> VaeExportReport:
    """Export ``vae``'s four chunk graphs (any frame size, multiples of 8 pixels) to ``target`` into
    ``out_dir`` and return a report. With ``verify`` the graphs just written are checked against
    ``vae`` in PyTorch, chunk by chunk, at a frame size other than the trace's (``verify_vae_export``).
    """
    from export.outputs import check_writable, staged_into

    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    out_dir = Path(out_dir)
    spec = TARGETS[target]
    finals = [out_dir / f"{g.stem}{s}" for g in GRAPHS for s in spec.suffixes]
    for path in finals:
        check_writable(path, force)

    start = time.perf_counter()
    vae = vae.eval()
    graphs = []
    with staged_into(out_dir, force) as stage:  # nothing lands unless every graph exported
        staged = _write_graphs(vae, spec, stage, precision, opset, on_stage)
    for graph, manifest in staged:
        files = {out_dir / f"{graph.stem}{s}": _digest(out_dir / f"{graph.stem}{s}") for s in spec.suffixes}
        graphs.append(GraphFile(graph.role, graph.chunk, out_dir / f"{graph.stem}{spec.suffixes[0]}", files, manifest))
    seconds = time.perf_counter() - start
    report = VaeExportReport(target, out_dir, graphs, seconds, precision, graphs[0].manifest.weights_sha256)
    if verify:
        report.verify = verify_vae_export(target, vae, precision=precision, opset=opset, folder=out_dir, on_stage=on_stage)
    return report


def _write_graphs(vae, spec: VaeTarget, stage: Path, precision: str, opset: int, on_stage: OnStage = silent):
    staged = []
    for graph in GRAPHS:
        on_stage(f"tracing {graph.stem} graph")
        module = graph.build(vae)
        manifest = graph_manifest(vae, module, graph, precision, opset, spec.name)
        spec.run(module, graph, graph_inputs(module, graph), stage, manifest, precision, opset)
        staged.append((graph, manifest))
    return staged


def _digest(*parts: Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def graph_sha256(path: Path) -> str:
    """SHA-256 of a graph as a bundle's ``graphs`` mapping records it (``models.manifest.graph_sha256``)."""
    from models.manifest import graph_sha256 as sha

    return sha(path)


# --------------------------------------------------------------------------------------------------
# Verification: chained chunks on every backend against PyTorch
# --------------------------------------------------------------------------------------------------

# Checked at a grid other than the trace's (odd, so nothing divides evenly by accident).
VERIFY_CELLS = (3, 5)


def run_graph(backend, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of one graph on an ``export.backends`` runtime, in the graph's output order."""
    from export.backends import OpenVINOBackend

    if isinstance(backend, OpenVINOBackend):
        request = backend.load().create_infer_request()
        request.infer(feed)
        return [np.asarray(request.get_output_tensor(i).data, dtype=np.float32).copy() for i in range(len(backend.load().outputs))]
    return [np.asarray(v, dtype=np.float32) for v in backend.load().run(None, feed)]


def run_chain(runners: dict[str, object], chunks: list[np.ndarray], input_name: str) -> list[np.ndarray]:
    """Run a role's first graph on chunk 0 and its step graph on the rest, feeding the caches on.
    ``runners`` maps "first"/"step" to a callable feed -> list of outputs (output first, then caches)."""
    first, *cache = runners["first"]({input_name: chunks[0]})
    outs = [first]
    names = runners["cache_names"]
    for x in chunks[1:]:
        y, *cache = runners["step"]({input_name: x, **dict(zip(names, cache))})
        outs.append(y)
    return outs + cache  # the outputs of every chunk, then the last caches


def verify_vae_export(
    target: str, vae, *, precision: str = "fp32", opset: int = DEFAULT_OPSET,
    chunks: int = 3, seed: int = 0, threads: int = 0, folder: str | Path | None = None, cells=VERIFY_CELLS,
    on_stage: OnStage = silent,
):
    """Run ``chunks`` chained chunks of each role at ``cells`` latent cells on PyTorch, ONNX Runtime
    CPU and OpenVINO CPU (f32); compare every chunk's output and the final caches. The graphs are
    those in ``folder`` (exported from ``vae``: what ``export_vae(verify=True)`` checks), else a
    random-weight copy of ``vae`` exported the same way. Returns an ``export.verify.VerifyReport``
    (shape = (chunks, H, W) of the role's input)."""
    import copy

    import torch

    from export.progress import prefixed
    from export.verify import Check, VerifyReport, backends_for
    from models.checkpoint import init_random_

    report = VerifyReport()
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="gvr-vae-verify-") as tmp:
        if folder is None:
            vae = init_random_(copy.deepcopy(vae), seed=seed).eval()
            _write_graphs(vae, TARGETS[target], Path(tmp), precision, opset, prefixed(on_stage, "verify: "))
            folder = tmp
        suffix = TARGETS[target].suffixes[0]
        by_role = {}
        for graph in GRAPHS:
            by_role.setdefault(graph.role, {})[graph.chunk] = graph
        for n, (role, pair) in enumerate(by_role.items()):
            on_stage("verifying VAE", n, len(by_role))
            modules = {c: g.build(vae) for c, g in pair.items()}
            in_shape = pair["first"].shapes(cells)[0]
            step_shape = pair["step"].shapes(cells)[0]
            make = (lambda s: rng.uniform(0, 1, s)) if pair["first"].input == "pixels" else rng.standard_normal
            data = [make(in_shape).astype(np.float32)] + [make(step_shape).astype(np.float32) for _ in range(chunks - 1)]

            def torch_runner(module):
                def run(feed):
                    with torch.inference_mode():
                        args = [torch.from_numpy(v) for v in feed.values()]
                        return [t.numpy() for t in module(*args)]

                return run

            names = modules["step"].cache_names
            expected = run_chain({"first": torch_runner(modules["first"]), "step": torch_runner(modules["step"]), "cache_names": names}, data, pair["first"].input)
            paths = {c: Path(folder) / f"{g.stem}{suffix}" for c, g in pair.items()}
            backend_sets = {c: backends_for(target, p, threads) for c, p in paths.items()}
            report.skipped.update(backend_sets["first"][1])
            for i in range(len(backend_sets["first"][0])):
                fb, sb = backend_sets["first"][0][i], backend_sets["step"][0][i]
                got = run_chain({"first": lambda f, b=fb: run_graph(b, f), "step": lambda f, b=sb: run_graph(b, f), "cache_names": names}, data, pair["first"].input)
                a, e = np.concatenate([g.ravel() for g in got]), np.concatenate([x.ravel() for x in expected])
                H, W = in_shape[-2:]
                report.checks.append(Check(f"{fb.name} {role}", (chunks, H, W), float(np.abs(a - e).max()), rel_l2(a, e), TOLERANCE[precision]))
        on_stage("verifying VAE", len(by_role), len(by_role))
    return report
