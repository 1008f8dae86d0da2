"""Every input the reliability matrix throws at ``gvr upscale``, generated with PyAV on the spot.

Nothing here is checked in: each case is a small function that writes its file(s) into a fresh
input root (with ``tests.clips``) and returns what to hand to ``gvr`` (the root, or the file
itself for cases that only make sense named explicitly). The tests and ``benchmarks/reliability_report.py`` share this table,
so the report runs exactly the matrix the tests assert on.

Expectations, per the reliability issue:
* ``error``   a broken input: one line naming the file and the cause, exit 1, no output, the
              batch goes on;
* ``upscale`` awkward but valid: a complete output, scale x the input, every frame;
* ``still``   a still image named explicitly: a one-frame output or a clear refusal;
* ``ignored`` not an input of this run (a link not followed): no output, no error, no hang.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the repository's packages, however pytest or the report was started
    sys.path.insert(0, str(REPO))

from tests import clips  # noqa: E402
from tests.fake_model import build_fake_onnx, fake_manifest  # noqa: E402,F401  (shared with tests/gvrcli)

# Tiny media keeps the whole matrix within a couple of minutes on two cores.
SIZE = (64, 48)
FRAMES = 6


# ---------------------------------------------------------------------------------------------
# Writing videos
# ---------------------------------------------------------------------------------------------


def write_video(path: Path, frames: int = FRAMES, **kw) -> Path:
    """``tests.clips.write_video``, six frames unless told otherwise."""
    return clips.write_video(path, frames, **kw)


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: max(1, int(len(data) * fraction))])
    return dst


def patch_bytes(path: Path, old: bytes, new: bytes) -> None:
    """Replace one header field in place; fail loudly if the muxer's layout changed under us."""
    data = path.read_bytes()
    assert data.count(old) >= 1, f"{path.name}: header field {old!r} not found"
    path.write_bytes(data.replace(old, new, 1))


# ---------------------------------------------------------------------------------------------
# Probing what an output holds (used to call an output "valid")
# ---------------------------------------------------------------------------------------------


def video_facts(path: Path) -> dict:
    """Decode every frame; raise if the file is not a complete, decodable video."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(v)]
        return {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "frames": len(frames),
            "times": [float(f.time) for f in frames if f.time is not None],
        }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """Content hash and mode of every regular file under ``root`` (links not followed), by relative path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
            out[os.fsencode(p.relative_to(root)).decode("utf-8", "surrogateescape")] = (
                f"{sha256(p)}:{oct(st.st_mode)}:{st.st_mtime_ns}"
            )
    return out


# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # broken | awkward | links
    expect: str  # error | upscale | still | ignored
    build: Callable[[Path], Path]  # (fresh input root) -> the path to give gvr
    frames: int = 0  # for "upscale": the frames the output must hold
    cause: str = ""  # for "error": a word the one-line error must contain (case-insensitive), "" = any
    note: str = ""
    needs: str = ""  # "no-dac-override": run gvr with ``without_dac_override`` (mode bits bind for root)

    def target(self, root: Path) -> Path:
        """Build the case under ``root`` and return what to hand to gvr."""
        root.mkdir(parents=True, exist_ok=True)
        return self.build(root)


def _good(root: Path, name: str = "good.mp4", **kw) -> Path:
    return write_video(root / name, **kw)


def _random_bytes(root: Path) -> Path:
    p = root / "random.mp4"
    p.write_bytes(random.Random(5).randbytes(8192))
    return p


def _truncated(fraction: float, faststart: bool = False):
    def build(root: Path) -> Path:
        # 30 frames so a cut lands inside the media data, not only in headers.
        opts = {"movflags": "+faststart"} if faststart else None
        src = write_video(root / ".src" / "whole.mp4", frames=30, container_options=opts)
        name = f"{'faststart-' if faststart else ''}trunc{int(fraction * 100)}.mp4"
        out = truncate(src, root / name, fraction)
        (root / ".src" / "whole.mp4").unlink()
        (root / ".src").rmdir()
        return out

    return build


def _text(root: Path) -> Path:
    p = root / "readme.mp4"
    p.write_text("This is a text file, not a video.\n" * 40)
    return p


def _huge_y4m(root: Path) -> Path:
    # A YUV4MPEG2 header claiming 16000x16000 (256 Mpx; FFmpeg's own sanity check allows it),
    # followed by one frame marker and a few bytes: decoding it would allocate ~384 MB per frame.
    p = root / "huge-claim.y4m"
    p.write_bytes(b"YUV4MPEG2 W16000 H16000 F24:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096))
    return p


def _huge_mkv(root: Path) -> Path:
    # A valid 256x256 FFV1 Matroska whose PixelWidth/PixelHeight are patched to 12000x9000.
    # FFV1 takes its frame size from the container, so a decoder trusting it allocates 108 Mpx frames.
    p = write_video(root / "huge-patched.mkv", frames=2, size=(256, 256), codec="ffv1", pix_fmt="yuv420p")
    patch_bytes(p, b"\xb0\x82\x01\x00", b"\xb0\x82\x2e\xe0")  # PixelWidth 256 -> 12000
    patch_bytes(p, b"\xba\x82\x01\x00", b"\xba\x82\x23\x28")  # PixelHeight 256 -> 9000
    return p


def _audio_only(root: Path) -> Path:
    return clips.write_audio(root / "audio-only.mp4")


def _zero(root: Path) -> Path:
    p = root / "zero.mp4"
    p.write_bytes(b"")
    return p


def _fifo(root: Path) -> Path:
    # A named pipe no one writes to: opening it for reading would block forever.
    p = root / "pipe.mp4"
    os.mkfifo(p)
    return p


def _chmod_000(root: Path) -> Path:
    p = write_video(root / "locked.mp4", frames=2)
    p.chmod(0)
    return p


def _directory_named_mp4(root: Path) -> Path:
    (root / "folder.mp4").mkdir()
    (root / "folder.mp4" / "notes.txt").write_text("a folder with a video's name")
    return root


BROKEN = [
    Case("zero-byte", "broken", "error", _zero, cause="empty"),
    Case("random-bytes", "broken", "error", _random_bytes),
    Case("truncated-10%", "broken", "error", _truncated(0.10)),
    Case("truncated-50%", "broken", "error", _truncated(0.50)),
    Case("truncated-99%", "broken", "error", _truncated(0.99)),
    Case("faststart-truncated-50%", "broken", "error", _truncated(0.50, faststart=True), cause="trunc",
         note="moov first: the header promises 30 frames, the data holds fewer"),
    Case("audio-only", "broken", "error", _audio_only, cause="no video"),
    Case("text-as-mp4", "broken", "error", _text),
    Case("huge-frame-y4m", "broken", "error", _huge_y4m, cause="max-pixels", note="16000x16000 claimed"),
    Case("huge-frame-mkv", "broken", "error", _huge_mkv, cause="max-pixels", note="12000x9000 patched into a 256x256 FFV1"),
]

# Unreadable inputs, named explicitly (a walk skips non-regular files by design).
UNREADABLE = [
    Case("unreadable-fifo", "broken", "error", _fifo, note="a FIFO named .mp4: must not block"),
    Case("unreadable-chmod-000", "broken", "error", _chmod_000, cause="permission", needs="no-dac-override",
         note="gvr runs without CAP_DAC_OVERRIDE: root reads mode-000 files"),
]


def _unknown_codec(root: Path) -> Path:
    # A QuickTime file whose video codec tag is one FFmpeg does not know (found by the fuzz test:
    # the stream exists, but it has no codec context).
    p = write_video(root / "alien-codec.mov", frames=3, codec="qtrle", pix_fmt="argb", alpha=True)
    patch_bytes(p, b"rle ", b"zzzz")
    return p


# Hostile but small: kept out of the shared broken batch while they can crash a whole run.
HOSTILE = [
    Case("unknown-video-codec", "broken", "error", _unknown_codec, note="codec tag patched to 'zzzz'"),
]


def _vfr(root: Path) -> Path:
    pts = [0, 40, 90, 100, 210, 230]
    return write_video(root / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000))


AWKWARD = [
    Case("one-frame", "awkward", "upscale", lambda r: _good(r, "one-frame.mp4", frames=1), frames=1),
    Case("odd-97x61", "awkward", "upscale",
         lambda r: write_video(r / "odd.mkv", size=(97, 61), codec="ffv1", pix_fmt="yuv420p"), frames=FRAMES),
    Case("10-bit", "awkward", "upscale", lambda r: _good(r, "deep.mp4", pix_fmt="yuv420p10le"), frames=FRAMES),
    Case("4:4:4", "awkward", "upscale", lambda r: _good(r, "full-chroma.mp4", pix_fmt="yuv444p"), frames=FRAMES),
    Case("alpha-qtrle-mov", "awkward", "upscale",
         lambda r: write_video(r / "alpha.mov", codec="qtrle", pix_fmt="argb", alpha=True), frames=FRAMES),
    Case("alpha-ffv1-yuva", "awkward", "upscale",
         lambda r: write_video(r / "alpha.mkv", codec="ffv1", pix_fmt="yuva420p", alpha=True), frames=FRAMES),
    Case("rotation-90", "awkward", "upscale", lambda r: _good(r, "rotated.mp4", rotation=90), frames=FRAMES),
    Case("vfr", "awkward", "upscale", _vfr, frames=6),
    Case("name-with-spaces", "awkward", "upscale", lambda r: _good(r, "my holiday clip.mp4"), frames=FRAMES),
    Case("name-unicode", "awkward", "upscale", lambda r: _good(r, "clip-é-日本語-🎬.mp4"), frames=FRAMES),
    Case("name-newline", "awkward", "upscale", lambda r: _good(r, "two\nlines.mp4"), frames=FRAMES),
    Case("still-png-explicit", "awkward", "still", lambda r: clips.write_still(r / "still.png"), frames=1,
         note="one-frame output or a clear refusal"),
    Case("folder-named-mp4", "awkward", "ignored", _directory_named_mp4),
]


def _symlink_loop(root: Path) -> Path:
    write_video(root / "real" / "a.mp4", frames=2)
    os.symlink("..", root / "real" / "loop")  # real/loop -> root: walking it never ends
    os.symlink("loop", root / "self")  # a link to a link
    return root


def _symlink_outside(root: Path) -> Path:
    outside = root.parent / (root.name + "-outside")
    write_video(outside / "secret.mp4", frames=2)
    write_video(root / "inside.mp4", frames=2)
    os.symlink(outside / "secret.mp4", root / "escape.mp4")
    os.symlink(outside, root / "escape-dir")
    return root


LINKS = [
    Case("symlink-loop", "links", "ignored", _symlink_loop, note="only real/a.mp4 is an input"),
    Case("symlink-outside-root", "links", "ignored", _symlink_outside, note="only inside.mp4 is an input"),
]

ALL = BROKEN + UNREADABLE + HOSTILE + AWKWARD + LINKS


def by_name(name: str) -> Case:
    return next(c for c in ALL if c.name == name)


def without_dac_override() -> None:
    """``preexec_fn``: drop root's permission to ignore mode bits (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH) from the child's bounding set, so after exec a mode-000 file is unreadable
    and a mode-555 folder unwritable even for root. Tests run as root here; this makes
    "unreadable" and "unwritable" real without switching users."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0 and os.geteuid() == 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def can_drop_dac_override() -> bool:
    """True when mode bits can be made to bind (we are root and may drop capabilities, or not root)."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        os.chmod(f.name, 0)
        try:
            done = subprocess.run(["cat", f.name], preexec_fn=without_dac_override, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode != 0
