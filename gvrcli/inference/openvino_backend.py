"""OpenVINO's backend: the graphs compiled for a device, at an explicit precision, from a cache.

``OpenVinoBackend`` is a small dataclass of knobs (device, threads, precision, cache folder);
``load`` reads OpenVINO IR (.xml + .bin) or ONNX and compiles each graph into an
``OpenVinoModel`` (``gvrcli.inference.openvino_model``). Why it is more than ``compile_model``:
a device asked for that this node lacks is exit 75 (retry elsewhere); OpenVINO always gets its
``INFERENCE_PRECISION_HINT``, since the CPU plugin would otherwise pick bf16 by itself where the
CPU has it and the same command would compute different numbers on different farm nodes; and the
compiled graphs are kept in a cache folder that is looked at before OpenVINO opens anything there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.manifest import STEP, ModelManifest

from gvrbase.errors import first_line
from gvrcli.errors import ModelError, RetryableError, UsageError
from gvrcli.inference.caches import compiled_cache, irregular_entry
from gvrcli.inference.loaded import OnDemand
from gvrcli.inference.modelfile import graph_paths, read_manifest
from gvrcli.inference.openvino_model import OpenVinoModel, graph_config
from gvrcli.inference.precision import artefact_precision
from gvrcli.inference.quiet_openvino import import_openvino

# --precision -> INFERENCE_PRECISION_HINT. Always set: OpenVINO's CPU plugin otherwise picks bf16
# by itself on CPUs that have it (AMX, AVX-512 BF16), and the same command differs by farm node.
_OV_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


@dataclass
class OpenVinoBackend:
    """OpenVINO. Knobs: ``device`` (CPU, GPU, AUTO), ``threads`` (CPU inference threads, 0 = default),
    ``precision`` (None = the artefact's). Reads OpenVINO IR (.xml + .bin) or ONNX files directly."""

    model_path: Path
    device: str = "AUTO"
    threads: int = 0
    precision: str | None = None
    reason: str = ""
    cache: Path | None = field(default_factory=lambda: compiled_cache("openvino"))

    def load(self, manifest: ModelManifest | None = None) -> "OpenVinoModel":
        ov = import_openvino()
        manifest = manifest or read_manifest(self.model_path)
        core = ov.Core()
        device = self.device.upper()
        available = core.available_devices
        if device not in ("AUTO", "CPU") and not any(d == device or d.startswith(device + ".") for d in available):
            raise RetryableError(
                f"OpenVINO device {device} is not available (available: {', '.join(available)}); "
                "retry on a node that has it, or use --device CPU"
            )
        # AUTO would pick a GPU if one is there, else the CPU: resolve it so the hint is checked
        # against the device that runs.
        if device == "AUTO":
            device = next((d for d in available if d.startswith("GPU")), "CPU")
        precision, weights = self._precision(core, device, manifest)
        config = {"INFERENCE_PRECISION_HINT": _OV_HINT[precision]}
        if precision == "fp16" and weights:
            # An fp16 artefact: on the CPU pinned to f32 arithmetic between the graph's own fp16
            # Casts (the same numbers on every CPU); a GPU computes f16 natively.
            config["INFERENCE_PRECISION_HINT"] = "f16" if device.startswith("GPU") else "f32"
        if self.threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = self.threads
        cache, note = self._cache_config()
        cached = {**config, **cache}
        paths = graph_paths(self.model_path, manifest)

        def read(role: str):
            try:
                return core.read_model(str(paths[role]))
            except RuntimeError as e:
                raise ModelError(f"model {paths[role]}: OpenVINO cannot read it ({first_line(e)})") from None

        def compile_(role: str):
            try:
                return core.compile_model(graphs[role], device, graph_config(cached, role))
            except RuntimeError as e:
                if config["INFERENCE_PRECISION_HINT"] in ("bf16", "f16") and device == "CPU":
                    # The plugin lists BF16 by the hardware; oneDNN capped below it (ONEDNN_MAX_CPU_ISA) has no kernels.
                    raise UsageError(
                        f"--precision {precision}: OpenVINO {device} cannot compile {paths[role].name} in {precision} "
                        f"on this machine ({first_line(e)}); run --precision fp32"
                    ) from None
                raise ModelError(f"model {paths[role]}: OpenVINO cannot compile it for {device} ({first_line(e)})") from None

        graphs, compiled = OnDemand({}, read), OnDemand({}, compile_)  # a dropped graph loads again when run
        compiled.update({role: compile_(role) for role in paths})
        try:
            devices = compiled[STEP].get_property("EXECUTION_DEVICES")
        except RuntimeError:
            devices = [device]
        return OpenVinoModel(
            manifest, compiled, f"openvino {','.join(devices)}", precision, note=note, core=core, graphs=graphs, device=device, config=config
        )

    def _cache_config(self) -> dict:
        """OpenVINO's compiled-model cache for the load-time (dynamic-shape) graphs: compiling the
        tiny default's two graphs takes ~1.1 s on a 2-core CPU, loading them from the cache ~0.15 s.
        One blob per graph, model, device, precision and OpenVINO version (a few MB). The per-shape
        static copies (``OpenVinoModel._compiled_for``) are not cached: one per chunk length and
        tile, ~50 MB each, would grow without bound over a farm's clips. A folder that cannot be
        made means no cache, not a failure; OpenVINO recompiles over a damaged blob by itself.

        Returns (config, note). The folder may be shared by a farm, so anyone may have put anything
        there, and OpenVINO opens its blobs itself, blocking: a FIFO named like a blob would hang the
        load for good. So the folder is looked at first (names and types only, nothing opened):
        unless every entry is a regular file, the cache is not used this run, with a note naming
        the entry (gvr never removes or moves what others put there)."""
        if self.cache is None:
            return {}, ""
        try:
            Path(self.cache).mkdir(parents=True, exist_ok=True)
        except OSError:
            return {}, ""
        odd = irregular_entry(Path(self.cache))
        if odd:
            return {}, f"compiled-model cache not used this run: {odd} (compiling without it)"
        return {"CACHE_DIR": str(self.cache)}, ""

    def _precision(self, core, device: str, manifest: ModelManifest) -> tuple[str, bool]:
        """(precision, whether fp16 means fp16 *weights* computed in f32)."""
        wanted = self.precision or manifest.precision
        if wanted == "fp16" and manifest.precision == "fp32" or wanted == "bf16":
            caps = _capabilities(core, device)
            name = {"fp16": "FP16", "bf16": "BF16"}[wanted]
            if name not in caps:
                raise UsageError(
                    f"--precision {wanted}: OpenVINO {device} does not compute in {wanted} on this machine "
                    f"(capabilities: {', '.join(caps) or 'none'})"
                    + ("; an fp16 artefact (gvr export --precision fp16) stores fp16 weights" if wanted == "fp16" else "")
                )
            return wanted, False
        return artefact_precision(self.precision, manifest, "openvino"), wanted == "fp16"


def _capabilities(core, device: str) -> list[str]:
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except RuntimeError:
        return []
