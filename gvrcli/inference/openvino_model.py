"""A model OpenVINO compiled: its infer requests run on the engine's own buffers, per shape.

``OpenVinoBackend.load`` (``gvrcli.inference.openvino_backend``) compiles the graphs for a device
at an explicit precision; this is what it hands the engine. Two things make it more than a
session: the CPU plugin needs far less memory for a graph compiled for one exact shape, so large
clips run on a per-shape static copy (``STATIC_MIN_ELEMENTS``, ``prepare`` compiles one ahead);
and an infer request belongs to one thread and holds its own activations, so each thread keeps one
per role, replaced when the shape changes. Runs are asynchronous and polled, so ``interrupt``
cancels a long step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from models.manifest import ModelManifest

from gvrcli.inference.loaded import ACTIVATION_FACTOR, ACTIVATION_FIXED_MB, f32_buffer, give_memory_back, raise_if_oom


# Clips at least this large (output pixels x frames) run on a copy of the graph compiled for their
# exact shape: the CPU plugin then plans its memory statically, and a step at 8 x 960x540 needs
# ~45% less of it (640 vs 1140 MB). A compiled copy holds that memory, so one is kept per role (and
# each thread's request for the role follows it): a new shape costs a compile (a second or two; a
# video has one or two shapes: full chunks, the last chunk; tiles share a size). Keeping four cut
# the sample job's recompiles but peaked at 3.7 GB instead of 2.4. Smaller clips (the load-time
# check) use the dynamic graph.
STATIC_MIN_ELEMENTS = 1 << 20
STATIC_CACHE = 1  # compiled shapes kept per role


def graph_config(config: dict, role: str) -> dict:
    """The compile config of one graph: the model's, except that the VAE graphs of a bundle compute
    in f32 whatever ``--precision`` says. OpenVINO's bf16 VAE decode came out at 19.8 dB PSNR
    against eager fp32 (eager bf16: 52.3 dB; ``benchmarks/bench_cascade_real.py --only eager``,
    Wan2.1 configuration, AMD EPYC): its normalisations lose too much in bf16, where the denoiser
    does not. The VAE is where the cascade's time goes, but wrong frames are not a speed-up."""
    if role.startswith("vae") and config.get("INFERENCE_PRECISION_HINT") == "bf16":
        return {**config, "INFERENCE_PRECISION_HINT": "f32"}
    return config


@dataclass
class OpenVinoModel:
    manifest: ModelManifest
    compiled: dict  # role -> CompiledModel (dynamic shapes)
    description: str
    precision: str
    note: str = ""
    activation_factor: float = ACTIVATION_FACTOR["openvino"]
    activation_fixed_mb: float = ACTIVATION_FIXED_MB["openvino"]
    core: object = None
    graphs: dict = field(default_factory=dict)  # role -> openvino.Model, to specialise per shape
    device: str = "CPU"
    config: dict = field(default_factory=dict)
    _static: dict = field(default_factory=dict, repr=False)  # (role, shapes) -> CompiledModel
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _interrupted: threading.Event = field(default_factory=threading.Event, repr=False)

    def bind(self, role, inputs, outputs) -> "OpenVinoBound":
        """Tensors sharing our buffers' memory, set on the thread's request for the role and shape at
        each run (requests are not shareable between threads, and each holds its own activation
        memory, so ping-pong bindings share one)."""
        import openvino as ov

        compiled = self._compiled_for(role, {k: v.shape for k, v in inputs.items()})
        tensors = {name: ov.Tensor(f32_buffer(value), shared_memory=True) for name, value in {**inputs, **outputs}.items()}
        return OpenVinoBound(self, role, compiled, tensors, tuple(outputs), {k: v.shape for k, v in outputs.items()})

    def prepare(self, role: str, shapes: dict[str, tuple]) -> None:
        """Compile now the graph a later ``bind`` of these input shapes will run."""
        self._compiled_for(role, shapes)

    def _compiled_for(self, role: str, shapes: dict[str, tuple]):
        if role not in self.graphs or max(int(np.prod(s)) for s in shapes.values()) < STATIC_MIN_ELEMENTS:
            return self.compiled[role]
        key = (role, tuple(sorted(shapes.items())))
        with self._lock:
            if key not in self._static:
                import openvino as ov

                graph = self.graphs[role].clone()
                graph.reshape({i: ov.PartialShape(list(shapes[_tensor_name(i, shapes)])) for i in graph.inputs})
                mine = [k for k in self._static if k[0] == role]
                if len(mine) >= STATIC_CACHE:
                    del self._static[mine[0]]
                self._static[key] = self.core.compile_model(graph, self.device, graph_config(self.config, role))
            return self._static[key]

    def request(self, role: str, compiled):
        """This thread's infer request for ``role`` on ``compiled``: one per role, replaced (with its
        activation memory) when the role's shape changes."""
        requests = self._local.__dict__.setdefault("requests", {})
        held = requests.get(role)
        if held is None or held[0] is not compiled:
            requests.pop(role, None)  # free the old activations before the new request allocates
            requests[role] = (compiled, compiled.create_infer_request())
        return requests[role][1]

    def release(self, role: str) -> None:
        """Free ``role``'s working memory now: this thread's infer request and the role's static
        copy (the next run makes them again): for graphs run in bursts (the tiled VAE)."""
        self._local.__dict__.get("requests", {}).pop(role, None)
        with self._lock:
            for key in [k for k in self._static if k[0] == role]:
                del self._static[key]

    def drop(self, role: str) -> None:
        """Unload ``role`` now (its requests, compiled copies and graph: its weights); its next run
        reads and compiles it again (``OnDemand``; OpenVINO's compiled-model cache makes that quick)."""
        self.release(role)
        with self._lock:
            self.compiled.pop(role, None)
            self.graphs.pop(role, None)
        give_memory_back()

    def interrupt(self) -> None:
        self._interrupted.set()


def _tensor_name(port, names) -> str:
    """Our name for a graph port (a port may carry several tensor names; the frontend adds its own)."""
    return next(n for n in port.get_names() if n in names)


@dataclass
class OpenVinoBound:
    model: OpenVinoModel
    role: str
    compiled: object
    tensors: dict
    outputs: tuple
    shapes: dict  # output name -> the bound buffer's shape

    def run(self) -> None:
        compiled = self.compiled
        request = self.model.request(self.role, compiled)
        for name, tensor in self.tensors.items():
            if name in self.outputs:
                request.set_tensor(compiled.output(name), tensor)
            else:
                request.set_tensor(compiled.input(name), tensor)
        try:
            # Asynchronous, polled, so an interrupt can cancel a long inference.
            request.start_async()
            while not request.wait_for(100):
                if self.model._interrupted.is_set():
                    request.cancel()
                    raise RuntimeError("inference cancelled")
        except RuntimeError as e:
            raise_if_oom(e)
            raise
        for name in self.outputs:  # OpenVINO shrinks a bound tensor to fit a smaller result, silently
            shape = tuple(request.get_tensor(compiled.output(name)).shape)
            if shape != self.shapes[name]:
                raise ValueError(f"graph output {name} has shape {shape}, the bound buffer {self.shapes[name]}")
