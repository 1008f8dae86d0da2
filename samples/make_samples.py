"""Generate the small sample videos the README's main-job command upscales.

Run once: ``python samples/make_samples.py``; the outputs are committed. Procedural scenes (no
downloads): fine textures and edges, so an upscale has detail to keep, plus motion, an AAC
audio track on one clip and a subfolder, which is what ``gvr upscale samples/ out/`` exercises.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: the repository's tests.clips writes the clips

from tests.clips import Tone, write_video  # noqa: E402


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
    write_video(
        path,
        frames=round(seconds * fps),
        size=size,
        fps=fps,
        options={"crf": "23", "preset": "slow"},
        # Tagged (and converted) as what we encode: BT.709 limited range, the usual for HD delivery.
        colour={"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1},
        audio=Tone(signal=_chime, seconds=seconds, bit_rate=64000) if audio else None,
        content=lambda index, height, width: scene(kind, index, width, height),
    )


def _chime(t: np.ndarray) -> np.ndarray:
    """A tone stepping up every quarter second."""
    return 0.15 * np.sin(2 * np.pi * (330 + 110 * np.floor(t * 4)) * t)


def main() -> None:
    write(HERE / "hills.mp4", "hills", (480, 270), 1.0, 24, audio=True)
    write(HERE / "shots" / "orbit.mp4", "orbit", (320, 180), 1.0, 24, audio=False)
    write(HERE / "shots" / "waves.mov", "waves", (320, 180), 1.0, 25, audio=False)
    for p in sorted(HERE.rglob("*.m*")):
        print(f"{p.relative_to(HERE)}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
