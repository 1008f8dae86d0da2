"""Fuzzing: mutated video bytes through probing and decoding, for a bounded time.

The contract the batch relies on: ``probe_video`` and ``VideoDecoder`` either succeed or raise
``InputError`` (one line naming the file). Anything else escaping them is an uncaught exception
(probing runs on the batch's main thread, where only InputError is handled), and no example may
take longer than a few seconds (no hang).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from media_cases import write_video

from gvrcli.media.decode import VideoDecoder
from gvrcli.errors import InputError
from gvrcli.media.probe import probe_video

EXAMPLE_SECONDS = 10.0  # per mutated file: far above a 64x48 clip's decode time, far below a hang
MAX_DECODED_FRAMES = 64  # a mutation may claim a long stream: decoding more proves nothing

SEEDS = {
    "mp4-h264": dict(name="seed.mp4"),
    "mkv-ffv1": dict(name="seed.mkv", codec="ffv1"),
    "mov-qtrle-alpha": dict(name="seed.mov", codec="qtrle", pix_fmt="argb", alpha=True),
}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("fuzz-seeds")
    out = {}
    for key, kw in SEEDS.items():
        kw = dict(kw)
        path = write_video(d / kw.pop("name"), frames=4, size=(64, 48), **kw)
        out[key] = (path.suffix, path.read_bytes())
    return out


# A mutation: (kind, position as a fraction of the file, length or byte value)
mutation = st.tuples(
    st.sampled_from(["flip", "zero", "ff", "cut", "insert", "duplicate"]),
    st.floats(0.0, 1.0, allow_nan=False),
    st.integers(1, 64),
)


def mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, where, n in edits:
        if not buf:
            break
        i = min(int(where * len(buf)), len(buf) - 1)
        if kind == "flip":
            buf[i] ^= 1 << (n % 8)
        elif kind == "zero":
            buf[i : i + n] = bytes(len(buf[i : i + n]))
        elif kind == "ff":
            buf[i : i + n] = b"\xff" * len(buf[i : i + n])
        elif kind == "cut":
            del buf[i : i + n * 16]
        elif kind == "insert":
            buf[i:i] = bytes((i * 131 + k) % 256 for k in range(n))
        elif kind == "duplicate":
            buf[i:i] = buf[i : i + n * 8]
    return bytes(buf)


def probe_and_decode(path: Path) -> str:
    """What the runtime does with one input before the model: probe, then decode every frame."""
    try:
        info = probe_video(path)
    except InputError:
        return "refused"
    decoder = VideoDecoder(info)
    try:
        for n, _frame in enumerate(decoder.frames()):
            if n >= MAX_DECODED_FRAMES:
                break
    except InputError:
        return "failed-cleanly"
    finally:
        decoder.close()
    return "decoded"


def run_bounded(path: Path) -> str:
    box: dict = {}

    def target():
        try:
            box["result"] = probe_and_decode(path)
        except BaseException as e:  # reported below as the uncaught exception it is
            box["error"] = e

    t = threading.Thread(target=target, daemon=True, name="fuzz-example")
    t.start()
    t.join(EXAMPLE_SECONDS)
    assert not t.is_alive(), f"probing/decoding {path.name} hung for {EXAMPLE_SECONDS} s"
    if "error" in box:
        raise AssertionError(f"uncaught {type(box['error']).__name__}: {box['error']}") from box["error"]
    return box["result"]


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_media_never_escapes_input_error_nor_hangs(seeds, seed, tmp_path):
    suffix, data = seeds[seed]
    outcomes: dict[str, int] = {}

    # derandomize: the same examples every run (a CI failure reproduces locally); database=None
    # keeps the repository free of a .hypothesis folder.
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(edits=st.lists(mutation, min_size=1, max_size=6))
    def check(edits):
        path = tmp_path / f"mutated{suffix}"
        path.write_bytes(mutate(data, edits))
        result = run_bounded(path)
        outcomes[result] = outcomes.get(result, 0) + 1

    check()
    assert sum(outcomes.values()) >= 150
    assert outcomes.get("decoded", 0) + outcomes.get("failed-cleanly", 0) > 0, "some mutations reach the decoder"
