"""The base degradation (RealBasicVSR-style, one order): blur -> downsample -> noise -> H.264.

The paper applies one order only: the second order of Real-ESRGAN/RealBasicVSR is too strong for
generated video, whose low-resolution output is clean rather than camera-degraded. Parameters are
sampled once per clip (a clip is consistently degraded, as a base model's output is); the noise
itself is fresh in every frame.

Randomness: every stage draws from its own stream, seeded by (seed, clip, stage), so switching one
stage off (or another stage drawing more numbers) leaves the others' draws unchanged, the same seed
gives the same output, and a clip's draws do not depend on which other clips are in the batch.
The H.264 stage is made deterministic: x264 runs with one thread and without its AVX-512 code
(``X264_DETERMINISTIC``), which we measured to give different bitstreams for the same input from
run to run on an AVX-512 CPU (libx264 165, PyAV 18 wheels; 7 different outputs in 30 runs of a
96x64 clip, 1 with ``asm=avx2``, ``no-asm`` or under valgrind).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

STAGES = ("blur", "resize", "noise", "compression", "flow", "model_guided")

# x264 options for reproducible output: its AVX-512 kernels are not (see above); AVX2 and below are.
X264_DETERMINISTIC = {"x264-params": "asm=avx2"}

RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def stage_rng(seed: int, clip: str, stage: str) -> np.random.Generator:
    """The random stream of one stage for one clip (``clip`` is its path relative to its input root)."""
    digest = hashlib.sha256(f"{clip}\0{stage}".encode("utf-8", "surrogateescape")).digest()
    return np.random.Generator(np.random.PCG64([seed & (2**63 - 1), int.from_bytes(digest[:8], "little")]))


@dataclass(frozen=True)
class BaseParams:
    """One clip's sampled base degradation (reported in its JSON event)."""

    blur_kind: str  # iso | aniso | generalized (a generalized Gaussian, exponent beta)
    blur_size: int  # odd kernel size, HQ pixels
    sigma_x: float
    sigma_y: float
    blur_angle: float  # degrees
    blur_beta: float  # 2 = Gaussian
    resize: str  # area | bilinear | bicubic
    noise_kind: str  # gaussian | poisson
    noise_level: float  # gaussian: sigma in 8-bit code values; poisson: scale
    noise_gray: bool  # the same noise in all channels
    crf: int  # H.264 constant rate factor of the compression stage

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def sample_base(seed: int, clip: str, scale: int) -> BaseParams:
    """Draw a clip's parameters. Ranges: RealBasicVSR's first order (blur sigma up to 3 HQ pixels at
    x4, scaled down for x2; Gaussian noise 1-30 code values or Poisson 0.05-3, 40% grey); H.264 CRF
    18-32 in place of its codec bitrates (CRF does not depend on the frame size)."""
    blur, resize, noise, compression = (stage_rng(seed, clip, s) for s in STAGES[:4])
    kind = str(blur.choice(["iso", "aniso", "generalized"], p=[0.45, 0.45, 0.1]))
    top = 0.75 * scale  # x4: 3.0, x2: 1.5
    sx = float(blur.uniform(0.2, top))
    sy = sx if kind == "iso" else float(blur.uniform(0.2, top))
    angle = float(blur.uniform(-180, 180)) if kind != "iso" else 0.0
    beta = float(blur.uniform(0.5, 4.0)) if kind == "generalized" else 2.0
    # Kernel size 7-21 as RealBasicVSR draws it, but no wider than +-3 sigma of the widest axis:
    # the rest is zeros after normalisation and would only cost time.
    size = min(int(blur.choice(range(7, 22, 2))), 2 * math.ceil(3 * max(sx, sy)) + 1)
    size = max(size, 3)
    mode = str(resize.choice(list(RESIZE_MODES)))
    nkind = str(noise.choice(["gaussian", "poisson"]))
    level = float(noise.uniform(1, 30)) if nkind == "gaussian" else float(noise.uniform(0.05, 3.0))
    gray = bool(noise.random() < 0.4)
    crf = int(compression.integers(18, 33))
    return BaseParams(kind, size, sx, sy, angle, beta, mode, nkind, level, gray, crf)


def blur_kernel(p: BaseParams) -> np.ndarray:
    """The clip's (anisotropic, possibly generalized) Gaussian kernel, normalised to sum 1."""
    r = p.blur_size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    t = math.radians(p.blur_angle)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    q = (u / p.sigma_x) ** 2 + (v / p.sigma_y) ** 2
    k = np.exp(-0.5 * q ** (p.blur_beta / 2))
    return (k / k.sum()).astype(np.float32)


def lr_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """An HQ frame's LQ size: the HQ is cropped (right, bottom) to a multiple of the scale."""
    return width // scale, height // scale


class BaseDegradation:
    """Blur and downsample (deterministic: safe to run in the decode thread), then noise and H.264.

    ``shrink`` takes an HQ frame to the clean LR; ``noisy`` adds this frame's noise; ``Compression``
    (below) codes the clip. All frames are (h, w, 3) float32 RGB in [0, 1]."""

    def __init__(self, params: BaseParams, scale: int, noise_rng: np.random.Generator):
        self.params, self.scale, self._rng = params, scale, noise_rng
        self._kernel = blur_kernel(params)

    def shrink(self, hq: np.ndarray) -> np.ndarray:
        s = self.scale
        w, h = lr_size(hq.shape[1], hq.shape[0], s)
        hq = hq[: h * s, : w * s]
        blurred = cv2.filter2D(hq, -1, self._kernel, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(blurred, (w, h), interpolation=RESIZE_MODES[self.params.resize])

    def noisy(self, lr: np.ndarray) -> np.ndarray:
        p, rng = self.params, self._rng
        shape = lr.shape[:2] + ((1,) if p.noise_gray else (3,))
        if p.noise_kind == "gaussian":
            noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(p.noise_level / 255)
        else:  # Poisson (shot) noise of a 256-level signal, scaled (Real-ESRGAN's form), drawn with
            # its Gaussian approximation (variance = mean; 5x faster than exact Poisson draws)
            base = lr.mean(axis=2, keepdims=True) if p.noise_gray else lr
            sd = np.sqrt(np.clip(base, 0, 1) * np.float32(1 / 256))
            noise = rng.standard_normal(shape, dtype=np.float32) * sd * np.float32(p.noise_level)
        return np.clip(lr + noise, 0, 1)


class Compression:
    """An H.264 round trip in memory (x264, one thread, so the same input gives the same output).
    ``push`` takes frames in order and returns the decoded frames that came out (x264 holds a few
    back for its lookahead; ``flush`` returns the rest). Odd sizes are padded for 4:2:0 and cropped."""

    def __init__(self, crf: int, width: int, height: int, rate: Fraction | None):
        self.width, self.height = width, height
        self._pw, self._ph = width + width % 2, height + height % 2
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = self._pw, self._ph, "yuv420p"
        rate = rate if rate and rate > 0 else Fraction(24)
        enc.time_base, enc.framerate = 1 / rate, rate
        enc.thread_count = 1
        enc.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", **X264_DETERMINISTIC}
        self._enc = enc
        self._dec = av.CodecContext.create("h264", "r")
        self._dec.thread_count = 1
        self._pts = 0

    def push(self, rgb: np.ndarray) -> list[np.ndarray]:
        u8 = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        if (self._pw, self._ph) != (self.width, self.height):
            u8 = np.pad(u8, ((0, self._ph - self.height), (0, self._pw - self.width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(u8, format="rgb24").reformat(format="yuv420p")
        frame.pts = self._pts
        self._pts += 1
        return self._decode(self._enc.encode(frame))

    def flush(self) -> list[np.ndarray]:
        out = self._decode(self._enc.encode(None))
        out += self._frames(self._dec.decode(None))
        return out

    def _decode(self, packets) -> list[np.ndarray]:
        out = []
        for packet in packets:
            out += self._frames(self._dec.decode(packet))
        return out

    def _frames(self, frames) -> list[np.ndarray]:
        return [
            f.to_ndarray(format="rgb24")[: self.height, : self.width].astype(np.float32) * np.float32(1 / 255)
            for f in frames
        ]
