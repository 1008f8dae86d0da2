"""A model ONNX Runtime loaded: its sessions run through IOBindings on the engine's own buffers.

``OrtBackend.load`` (``gvrcli.inference.ort_backend``) decides which provider runs and builds
the sessions; this is what it hands the engine. A binding is made once per clip and run once per
sampler step: inputs are read and outputs written in place, host numpy buffers on the CPU, device
``OrtValue``s (``device_buffer``) on a GPU, so the sampler's latents never cross to the host
between steps. ``interrupt`` ends the runs in flight between kernels (SIGTERM must not wait out a
long step), ``release`` lets a graph run in bursts give its arena memory back, and ``drop`` unloads
one (it loads again when next run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from models.manifest import ModelManifest

from gvrcli.inference.loaded import ACTIVATION_FACTOR, ACTIVATION_FIXED_MB, f32_buffer, give_memory_back, raise_if_oom


@dataclass
class OrtModel:
    manifest: ModelManifest
    sessions: dict  # role -> InferenceSession (an ``OnDemand``: a dropped one loads again when run)
    description: str
    precision: str
    note: str = ""
    activation_factor: float = ACTIVATION_FACTOR["onnxruntime"]
    activation_fixed_mb: float = ACTIVATION_FIXED_MB["onnxruntime"]
    latent_device: str | None = None  # where the engine keeps the sampler's latents ("cuda", "cpu" OrtValues), None = host numpy
    device_id: int = 0
    lr_max: tuple[int, int] | None = None  # largest LR tile the graphs take (TensorRT's profile)
    _in_flight: set = field(default_factory=set, repr=False)
    _shrink: set = field(default_factory=set, repr=False)  # roles whose runs give their arena memory back

    def release(self, role: str) -> None:
        """Let ``role``'s runs give their working memory back when they end (the arena shrinks to what
        is in use), at some cost per run: for graphs run in bursts (the tiled VAE, gvrcli.inference.vae_plan)."""
        self._shrink.add(role)

    def drop(self, role: str) -> None:
        """Unload ``role``'s session and its weights now; its next run loads it again (``OnDemand``)."""
        self.sessions.pop(role, None)
        self._shrink.discard(role)
        give_memory_back()

    def bind(self, role, inputs, outputs) -> "OrtBound":
        """An IOBinding: ORT reads the inputs and writes the outputs in place. A value is a host
        float32 numpy buffer, or an ``OrtValue`` from ``device_buffer`` (on the device: no copy)."""
        session = self.sessions[role]
        binding = session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, f32_buffer(value))
            else:
                binding.bind_ortvalue_input(name, value)
        for name, value in outputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_output(name, "cpu", 0, np.float32, list(f32_buffer(value).shape), value.ctypes.data)
            else:
                binding.bind_ortvalue_output(name, value)
        return OrtBound(self, session, binding, role in self._shrink)

    def device_buffer(self, shape, values: np.ndarray | None = None):
        """A float32 ``OrtValue`` on this model's device (allocated once, reused by the engine),
        filled from ``values`` (a host copy) if given."""
        import onnxruntime as ort

        if values is not None:
            return ort.OrtValue.ortvalue_from_numpy(f32_buffer(np.ascontiguousarray(values)), self.latent_device, self.device_id)
        return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.float32, self.latent_device, self.device_id)

    def interrupt(self) -> None:
        for options in list(self._in_flight):
            options.terminate = True  # ORT checks it between kernels and fails the run


@dataclass
class OrtBound:
    model: OrtModel
    session: object
    binding: object
    shrink: bool = False

    def run(self) -> None:
        import onnxruntime as ort

        options = ort.RunOptions()
        if self.shrink:
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.model._in_flight.add(options)
        try:
            self.session.run_with_iobinding(self.binding, options)
        except Exception as e:
            raise_if_oom(e)
            raise
        finally:
            self.model._in_flight.discard(options)
