"""The latent cascade: VAE encode -> SimpleGVR in latent space -> VAE decode, streaming.

``LatentCascade`` is the middle stage of ``gvrcli.stages.stream_file`` for a bundle: decoded
frames go in (padded to multiples of 8 pixels), latent frames come out of the chunked encoder
(``gvrcli.inference.vae``), through the engine in latent mode (chunks of latent frames, tiles of
latent cells, ``gvrcli.inference.engine``), and the HR latents through the chunked decoder; the
frames come back cropped to the input's size x scale and count (the encoder pads the last group to
4n + 1 frames by repeating the last one; those extra frames are dropped). Every stage holds at most
one chunk, so memory stays flat whatever the length.

The VAE stages are planned with the rest of the process (``gvrcli.inference.vae_plan``) at the
first frame, when the size is known: each runs one piece, in overlapping tiles, or in tiles whose
causal caches wait on disk, whichever is fastest within ``--memory-budget``; the caches the VAE
keeps between chunks are added to what the denoiser's own planner sees as already held. The plan
and each VAE stage's seconds go in the file's report (``report``).

Scene cuts are not honoured here: the VAE's latent frames each span 4 frames, and a cut inside one
cannot be separated. ``upscale_latent_file`` runs a latent file (``gvrcli.media.latents``), the
paper's own path, through the same engine and decoder, with no encode at all.
"""

from __future__ import annotations

import dataclasses
import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from gvrcli.errors import Cancelled, InputError
from gvrcli.inference.engine import NonFiniteOutput, Upscaler
from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.memory import ram_mb
from gvrcli.inference.modelfile import STEP
from gvrcli.inference.vae import ChunkedDecoder, ChunkedEncoder, VaeGraphs, pad_to_multiple
from gvrcli.inference.vae_plan import RoleCost, VaePlan, lean_baseline_mb, plan_vae, runtime_of
from gvrcli.media.decode import ColourTags
from gvrcli.media.encode import EncodeSettings, VideoEncoder
from gvrcli.inference.text import prompt_for_latents
from gvrcli.media.latents import LatentInfo, read_latents


class LatentCascade:
    """A ``FrameStream``: (h, w, 3) frames in, planar (3, s*h, s*w) frames out, in order.
    ``keep_latents``: the HR latent frames are kept too (``hr_latents``, for ``--save-latents``)."""

    def __init__(self, upscaler: Upscaler, vae: VaeGraphs, keep_latents: bool = False):
        self.upscaler, self.vae = upscaler, vae
        self.encoder: ChunkedEncoder | None = None  # made at the first frame, with the plan
        self.decoder: ChunkedDecoder | None = None
        self.plan: VaePlan | None = None
        self.denoiser = StreamingUpscaler(upscaler)
        self.scale, self.multiple = upscaler.scale, vae.spatial_factor
        self.pushed = 0  # input frames so far: the output is cropped to these
        self.done_until = 0
        self.size: tuple[int, int] | None = None  # the input's (h, w)
        self.hr_latents: list[np.ndarray] | None = [] if keep_latents else None

    def push(self, rgb: np.ndarray, prepared=None) -> list[tuple[int, np.ndarray]]:
        self.size = rgb.shape[:2]
        self.pushed += 1
        frame = pad_to_multiple(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32), self.multiple)
        if self.encoder is None:
            self._start(*frame.shape[-2:])
        return self._through(self.encoder.push(frame))

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if self.encoder is None:
            return []
        return self._through(self.encoder.finish(), last=True)

    def _start(self, H: int, W: int) -> None:
        """Plan the VAE stages for frames of H x W (padded) pixels and make their runners."""
        up, s = self.upscaler, self.multiple
        memory = getattr(up, "_memory_before_vae", up.memory)  # the engine's own, before any file's VAE
        up._memory_before_vae = memory
        lr, frames = (H // s, W // s), up.settings.chunk_frames
        hr = (lr[0] * self.scale, lr[1] * self.scale)
        runtime = runtime_of(up.model)
        enc, dec = (RoleCost.of(self.vae.manifests[r], runtime, self.vae.file_mb.get(f"{r}_first", 0.0)) for r in ("vae_encoder", "vae_decoder"))
        budget = up.settings.memory_budget_mb or ram_mb() / 2  # auto: at most half the RAM
        # What the denoiser's runtime keeps while the VAE runs. ONNX Runtime's arena would keep the
        # largest working set it ever had (2 GiB for a 20-frame chunk of 90x180 latents): there its
        # runs give it back when they end (the denoiser is ~1% of a cascade's time, reallocating is
        # lost in it), so it never meets the VAE's. OpenVINO keeps its infer request: planned beside.
        transient = runtime == "onnxruntime" and hasattr(up.model, "release")
        if transient:
            up.model.release(STEP)
        denoiser = 0.0 if transient else memory.peak_mb(frames, *lr, *lr) - memory.baseline_mb
        self.plan = plan_vae(enc, dec, lr, hr, budget_mb=budget, baseline_mb=memory.baseline_mb, others_mb=denoiser)
        if self.plan.lean:  # the decoder's first-chunk graph comes back for its chunk (the encoder's runs next)
            up.model.drop("vae_decoder_first")
        # What the VAE keeps between chunks is held while the denoiser runs: its planner must see it.
        baseline = lean_baseline_mb(self.plan, enc, dec, memory.baseline_mb)
        up.memory = dataclasses.replace(memory, baseline_mb=baseline + self.plan.encoder.held_mb + self.plan.decoder.held_mb)
        self.encoder = ChunkedEncoder(up.model, self.vae, self.plan.encoder, self.plan.lean)
        self.decoder = ChunkedDecoder(up.model, self.vae, self.plan.decoder, self.plan.lean)
        if not self.plan.fits:
            up.warnings.append(
                f"--memory-budget {budget:.0f} MiB is below what the VAE needs at {W}x{H} even in its smallest "
                f"tiles with caches on disk ({self.plan.estimate_mb:.0f} MiB planned); raise the budget"
            )

    def report(self) -> dict:
        """The file report's ``vae`` entry: the plan, and each VAE stage's seconds."""
        if self.plan is None:
            return {}
        spill = sum(r.runner.tiled.spill_seconds for r in (self.encoder, self.decoder) if r.runner.tiled is not None)
        return {
            "plan": self.plan.describe(), "fits": self.plan.fits, "lean": self.plan.lean,
            "encode": self.plan.encoder.to_dict(8), "decode": self.plan.decoder.to_dict(8),
            "encode_s": round(self.encoder.seconds, 3), "decode_s": round(self.decoder.seconds, 3), "spill_s": round(spill, 3),
        }

    def cut(self) -> list[tuple[int, np.ndarray]]:
        return []  # see the module docstring: the pipeline runs a bundle without shot detection

    def _through(self, latents: list[np.ndarray], last: bool = False) -> list[tuple[int, np.ndarray]]:
        hr = [z for latent in latents for _, z in self.denoiser.push(latent)]
        if last:
            hr += [z for _, z in self.denoiser.finish()]
        frames = []
        for z in hr:
            if self.hr_latents is not None:
                self.hr_latents.append(z)
            frames += self.decoder.push(z)
        if last:
            frames += self.decoder.finish()
        return self._emit(frames)

    def _emit(self, frames: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        h, w = self.size
        H, W = h * self.scale, w * self.scale
        out = []
        for frame in frames:
            if self.done_until < self.pushed:  # frames past the input's count are the encoder's padding
                out.append((self.done_until, np.ascontiguousarray(frame[:, :H, :W])))
                self.done_until += 1
        return out

    def latents(self) -> np.ndarray | None:
        """The HR latents (C, T', H/8, W/8) kept so far, or None."""
        return np.stack(self.hr_latents, axis=1) if self.hr_latents else None


def upscale_latent_file(
    info: LatentInfo,
    partial: Path,
    upscaler: Upscaler,
    vae: VaeGraphs,
    encode: EncodeSettings,
    *,
    cancel: threading.Event,
    on_frames: Callable[[int], None] = lambda n: None,
    keep_latents: bool = False,
    input_tree: Path | None = None,
):
    """Upscale a latent file in latent space and decode it into the video ``partial``: 4 (T - 1) + 1
    frames at 8 s h x 8 s w, at the file's fps. Returns (frames, HR latents or None)."""
    z = read_latents(info)  # (C, T, h, w): small (1/48 of the decoded video's floats)
    if upscaler.manifest.has_text:  # its prompt: inside the file, or a sidecar beside it
        upscaler.set_prompt(prompt_for_latents(info.path, upscaler.manifest, input_tree))
    denoiser, decoder = StreamingUpscaler(upscaler), ChunkedDecoder(upscaler.model, vae)
    upscaler.cancel = cancel
    kept: list[np.ndarray] = []
    time_base = 1 / info.fps
    encoder: VideoEncoder | None = None
    written = 0
    try:
        for k in range(z.shape[1] + 1):
            if cancel.is_set():
                raise Cancelled()
            ready = denoiser.push(np.ascontiguousarray(z[:, k])) if k < z.shape[1] else denoiser.finish()
            for _, hr in ready:
                if keep_latents:
                    kept.append(hr)
                for frame in decoder.push(hr):
                    if encoder is None:
                        H, W = frame.shape[1:]
                        encoder = VideoEncoder(partial, None, W, H, Fraction(time_base), info.fps, ColourTags(colorspace=1, color_primaries=1, color_trc=1), encode)
                    encoder.write(frame, written)
                    written += 1
                    on_frames(1)
        encoder.close()
    except NonFiniteOutput as e:
        raise InputError(f"{info.path}: {e}") from None
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise
    return written, (np.stack(kept, axis=1) if keep_latents else None), tuple(encoder.warnings)
