"""The sampler loop: one clip (a chunk, or a tile of it) through the model's graphs, step by step.

Per clip the model's condition graph runs once; the step graph (network and Euler update, the
same update as ``models.rectified_flow.euler_sample``) then runs once per sampler step, reading and
writing two preallocated latent buffers in turn (ping-pong), so the loop allocates and copies
nothing (why that matters: ``Upscaler._sample``). On a GPU provider those buffers live on the
device (``_integrate_on_device``): only the LR clip goes in and the result comes out.

A model with a text path takes the video's prompt (``gvrcli.inference.text``): its text graph
runs once per video. Guidance (``--cfg S``, S != 1, with a prompt) runs the step graph twice per
step, null and prompt tokens, and combines the two results as the velocities combine
(``models.rectified_flow.guided``; the Euler update is affine in the velocity, so this is the
guided step). Two calls, not one batched call: the graphs are exported at batch 1, and a batch
of two holds twice the activations for a gain within noise on CPU (README, bench_cfg.py).

What a clip is, how a frame is cut into clips and what happens to the result is the engine's
(``gvrcli.inference.engine.Upscaler``, which is a ``Sampler``).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
from models.manifest import CONDITION, STEP, TEXT
from models.rectified_flow import timesteps

from gvrcli.errors import Cancelled
from gvrcli.inference.loaded import LoadedModel
from gvrcli.inference.settings import EngineSettings
from gvrcli.inference.text import PromptEmbeds


class Sampler:
    """Integrates clips with loaded models: ``_integrate(model, lr, lr_noise, z)`` -> the final latent.

    The model is an argument, not a field: the engine reruns a non-finite clip with an fp32 model.
    What a run of clips shares lives here: the reused host and device buffers, the prompt's text
    tokens per model, the time spent inside the graphs (``model_seconds``, ``step_seconds``), and
    the hooks the pipeline sets: ``cancel`` (set: stop before the next sampler step) and
    ``on_step(step, steps)``, called after each sampler step (1-based).
    """

    def __init__(self, settings: EngineSettings, codec, latent: bool):
        self.settings, self.codec = settings, codec
        self.latent = latent  # fed VAE latents, not pixels: no codec encode of the LR clip here
        self.model_seconds = 0.0  # time inside the model's graphs, for the outside-the-model share
        self.step_seconds: list[float] = []  # each sampler step's time (for the overhead checks)
        self.cancel: threading.Event | None = None  # set: stop before the next sampler step
        self.on_step: Callable[[int, int], None] | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self.set_prompt(None)
        self._device: tuple | None = None  # (key, device latents) of the last clip shape, see _device_buffers

    def set_prompt(self, prompt: PromptEmbeds | None) -> None:
        """The prompt of the next video(s) (``gvrcli.inference.text``); None = no prompt (the null
        embedding). Its text graph runs on first use, once per model."""
        self.prompt, self._texts = prompt, {}

    def _integrate(self, model: LoadedModel, lr: np.ndarray, lr_noise: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The condition graph once, then ``steps`` step graphs ping-ponging between ``z`` and one
        reused buffer; returns the final latent (1, C, T, H, W) (one of the two buffers).

        Guided (a prompt and cfg != 1): each step runs twice, with the null tokens into the target
        buffer and with the prompt's into a third, then target += cfg * (third - target).

        On a GPU provider (``OrtModel.latent_device``) an unguided run keeps its latents on the
        device (``_integrate_on_device``); a guided one combines the two steps' outputs here, on
        the host, so it runs this path."""
        m = model.manifest
        if getattr(model, "latent_device", None) and not (m.has_text and len(self._text_tokens(model)) == 2):
            return self._integrate_on_device(model, lr, lr_noise, z)
        lat = (lr if self.latent else self.codec.encode(lr))[None]  # (1, C, T, h, w)
        lr_noise = lr_noise[None]
        z = z[None]  # (1, C, T, H, W)
        other = self._buffer("z", z.shape)
        conds = {name: self._buffer(name, z.shape) for name in ("cond", "base") if name in m.inputs}
        level = self._buffer("noise_aug", (1,))
        level[0] = self.settings.noise_aug
        t, t_next = self._buffer("t", (1,)), self._buffer("t_next", (1,))
        hr_grid = self._buffer("hr_grid", (1, 1, 1, *z.shape[-2:]))  # its shape is the output size
        self._check_cancel()
        self._timed(model.bind(CONDITION, {"lr": lat, "lr_noise": lr_noise, "noise_aug": level, "hr_grid": hr_grid}, conds))
        shared = {"t": t, "t_next": t_next, "noise_aug": level, **conds}
        texts = self._text_tokens(model) if m.has_text else [{}]  # [null, prompt] when guided
        guided = self._buffer("z_guided", z.shape) if len(texts) == 2 else None
        ping_pong = [  # step k reads z_t from one buffer and writes z_next into the other
            [model.bind(STEP, {"z_t": src, **shared, **text}, {"z_next": out}) for text, out in zip(texts, (dst, guided))]
            for src, dst in ((z, other), (other, z))
        ]
        ts = timesteps(self.settings.steps, self.settings.shift)
        for k, (now, then) in enumerate(zip(ts[:-1], ts[1:])):
            t[0], t_next[0] = now, then  # bound by address: the runtime reads them in place
            self._check_cancel()
            self.step_seconds.append(sum(self._timed(bound) for bound in ping_pong[k % 2]))
            if guided is not None:  # z_null + cfg * (z_prompt - z_null), in place
                target = other if k % 2 == 0 else z
                guided -= target
                guided *= np.float32(self.settings.cfg)
                target += guided
            if self.on_step is not None:
                self.on_step(k + 1, self.settings.steps)
        return other if self.settings.steps % 2 else z

    def _text_tokens(self, model: LoadedModel) -> list[dict[str, np.ndarray]]:
        """The step's ``text`` input(s) for this model and prompt: [prompt or null], or [null,
        prompt] when guided. The text graph runs once per model and prompt (``set_prompt``)."""
        key = id(model)
        if key not in self._texts:
            m = model.manifest
            N, dim = m.text_tokens, int(m.config["dim"])
            prompt = self.prompt.tokens[None] if self.prompt is not None else np.zeros((1, 1, m.text_dim), np.float32)
            L = prompt.shape[1]
            out = {"text": np.empty((1, L, dim), np.float32), "text_null": np.empty((1, N, dim), np.float32)}
            self._timed(model.bind(TEXT, {"prompt": np.ascontiguousarray(prompt)}, out))
            null = out["text_null"]
            if self.prompt is None:
                self._texts[key] = [{"text": null}]
            else:  # the projection is per token: pad the prompt's tokens with the null's after them
                text = np.ascontiguousarray(np.concatenate([out["text"], null[:, L:]], axis=1))
                self._texts[key] = [{"text": null}, {"text": text}] if self.settings.cfg != 1.0 else [{"text": text}]
        return self._texts[key]

    def _integrate_on_device(self, model, lr: np.ndarray, lr_noise: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``_integrate`` with the latents on the model's device (ONNX Runtime IOBinding of
        ``OrtValue``s): the LR clip and its noise go in once (the condition graph's host inputs),
        the starting noise once, cond/base and both z buffers stay on the device through every
        step (the Euler update is inside the step graph), and the timesteps are device scalars
        made once per clip. The result comes back once, into ``z`` (the HR out)."""
        m = model.manifest
        lat = (lr if self.latent else self.codec.encode(lr))[None]  # (1, C, T, h, w), host
        lr_noise = lr_noise[None]
        shape = (1, *z.shape)
        buffers = self._device_buffers(model, shape, [name for name in ("cond", "base") if name in m.inputs])
        a, b = buffers["z"], buffers["other"]
        a.update_inplace(z[None])  # the clip's starting noise, host -> device once
        level = model.device_buffer((1,), np.array([self.settings.noise_aug], np.float32))
        conds = {name: buffers[name] for name in ("cond", "base") if name in buffers}
        self._check_cancel()
        grid = {"hr_grid": buffers["hr_grid"]}  # its shape is the output size
        self._timed(model.bind(CONDITION, {"lr": lat, "lr_noise": lr_noise, "noise_aug": level, **grid}, conds))
        texts = self._text_tokens(model) if m.has_text else [{}]  # unguided here: one set of tokens
        text = {k: model.device_buffer(v.shape, v) for k, v in texts[0].items()}
        ts = timesteps(self.settings.steps, self.settings.shift)
        scalars = [model.device_buffer((1,), np.array([v], np.float32)) for v in ts]
        for k in range(self.settings.steps):
            self._check_cancel()
            inputs = {"z_t": a, "t": scalars[k], "t_next": scalars[k + 1], "noise_aug": level, **conds, **text}
            bound = model.bind(STEP, inputs, {"z_next": b})
            self.step_seconds.append(self._timed(bound))
            if self.on_step is not None:
                self.on_step(k + 1, self.settings.steps)
            a, b = b, a
        z[...] = a.numpy()[0]  # device -> host once: the HR out
        return z[None]

    def _device_buffers(self, model, shape: tuple[int, ...], conds: list[str]) -> dict:
        """The clip's device latents (z ping-pong pair, cond, base), kept while the shape repeats."""
        key = (id(model), shape)
        if self._device is None or self._device[0] != key:
            self._device = None  # free the old clip's device memory first
            held = {name: model.device_buffer(shape) for name in ("z", "other", *conds)}
            held["hr_grid"] = model.device_buffer((1, 1, 1, *shape[-2:]))
            self._device = (key, held)
        return self._device[1]

    def _timed(self, bound) -> float:
        started = time.perf_counter()
        try:
            bound.run()
        except Exception:
            self._check_cancel()  # a run aborted by LoadedModel.interrupt() is a cancel, not a failure
            raise
        seconds = time.perf_counter() - started
        self.model_seconds += seconds
        return seconds

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 buffer kept from tile to tile (reallocated only when the shape changes)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=np.float32)
        return buf
