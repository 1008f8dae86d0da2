"""Generate the small sample videos the README's main-job command upscales.

Run once: ``python samples/make_samples.py``; the outputs are committed. Procedural scenes (no
downloads): fine textures and edges, so an upscale has detail to keep, plus motion, an AAC
audio track on one clip and a subfolder, which is what ``gvr upscale samples/ out/`` exercises.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent


def scene(kind: str, index: int, width: int, height: int) -> np.ndarray:
    """One RGB uint8 frame of a moving procedural scene."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = index / 24.0
    if kind == "hills":  # sky gradient, a sun, layered hills, a fine fence texture
        sky = np.stack([0.35 + 0.4 * y / height, 0.55 + 0.3 * y / height, 0.95 - 0.2 * y / height], -1)
        img = sky
        sun = ((x - width * (0.2 + 0.3 * t)) ** 2 + (y - height * 0.25) ** 2) < (height * 0.09) ** 2
        img[sun] = (1.0, 0.85, 0.4)
        for k, (amp, base, col) in enumerate([(0.06, 0.55, (0.25, 0.5, 0.3)), (0.08, 0.7, (0.15, 0.38, 0.2))]):
            ridge = height * (base + amp * np.sin(x / width * (5 + 3 * k) + t * (1 + k)))
            img[y > ridge] = col
        fence = (y > height * 0.82) & ((x.astype(int) + int(40 * t)) % 9 < 2)
        img[fence] = (0.55, 0.4, 0.25)
    elif kind == "orbit":  # dark background, orbiting discs, a checker floor
        img = np.zeros((height, width, 3), np.float32) + 0.08
        floor = y > height * 0.7
        checker = ((x // 8 + y // 8 + index) % 2).astype(bool)
        img[floor & checker] = (0.7, 0.7, 0.72)
        img[floor & ~checker] = (0.2, 0.2, 0.25)
        for k in range(3):
            a = t * (1.5 + k) + k * 2.1
            cx, cy = width * (0.5 + 0.3 * np.cos(a)), height * (0.38 + 0.2 * np.sin(a))
            disc = (x - cx) ** 2 + (y - cy) ** 2 < (height * (0.06 + 0.02 * k)) ** 2
            img[disc] = [(0.9, 0.3, 0.3), (0.3, 0.8, 0.4), (0.3, 0.5, 0.95)][k]
    else:  # "waves": interference rings with thin stripes
        r1 = np.hypot(x - width * 0.3, y - height * 0.5)
        r2 = np.hypot(x - width * 0.7, y - height * 0.4)
        v = np.sin(r1 / 3.0 - t * 6) + np.sin(r2 / 4.0 - t * 4)
        img = np.stack([0.5 + 0.25 * v, 0.5 + 0.2 * np.sin(v * 2), 0.6 - 0.2 * v], -1)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write(path: Path, kind: str, size: tuple[int, int], seconds: float, fps: int, audio: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    frames = round(seconds * fps)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"crf": "23", "preset": "slow"}
        # Tag what we encode: BT.709 limited range, the usual for HD delivery.
        ctx = video.codec_context
        ctx.color_range, ctx.colorspace, ctx.color_primaries, ctx.color_trc = 1, 1, 1, 1
        ctx.time_base = Fraction(1, fps)
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
            sound.bit_rate = 64000
        out.start_encoding()
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(kind, i, width, height), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            total, n = int(seconds * 48000), 0
            while n < total:
                k = min(1024, total - n)
                tt = np.arange(n, n + k, dtype=np.float32) / 48000
                tone = 0.15 * np.sin(2 * np.pi * (330 + 110 * np.floor(tt * 4)) * tt)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]).astype(np.float32), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 48000, n
                for packet in sound.encode(frame):
                    out.mux(packet)
                n += k
            for packet in sound.encode(None):
                out.mux(packet)


def main() -> None:
    write(HERE / "hills.mp4", "hills", (480, 270), 1.0, 24, audio=True)
    write(HERE / "shots" / "orbit.mp4", "orbit", (320, 180), 1.0, 24, audio=False)
    write(HERE / "shots" / "waves.mov", "waves", (320, 180), 1.0, 25, audio=False)
    for p in sorted(HERE.rglob("*.m*")):
        print(f"{p.relative_to(HERE)}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
