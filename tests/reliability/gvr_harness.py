"""Running the real ``gvr`` CLI in subprocesses and judging what it left behind.

Shared by the reliability tests and ``benchmarks/reliability_report.py``: the same command line,
the same meaning of "a clear error", "a valid output" and "a leftover".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from media_cases import REPO, video_facts

GVR = [sys.executable, "-m", "gvrcli"]

# The real CLI with one fault injected: FFmpeg hanging on a hostile file. A hang inside FFmpeg
# cannot be produced on demand, so these wrappers block (forever) where FFmpeg would, for inputs
# whose name contains "hang", and then run gvr's own ``main()`` unchanged.
_HANG_PROLOGUE = """
import sys, threading
import av
"""
_HANG_EPILOGUE = """
from gvrcli.cli import main
sys.argv = ["gvr", *sys.argv[1:]]
main()
"""
HANG_IN_DECODE = [sys.executable, "-c", _HANG_PROLOGUE + """
import gvrcli.media.decode as decode
_frames = decode.VideoDecoder.frames
def frames(self):
    if "hang" in self.info.path.name:
        threading.Event().wait()  # a decoder stuck on a hostile frame
    yield from _frames(self)
decode.VideoDecoder.frames = frames
""" + _HANG_EPILOGUE]
HANG_IN_PROBE = [sys.executable, "-c", _HANG_PROLOGUE + """
_open = av.open
def hanging_open(file, *args, **kw):
    if "hang" in str(file) and (not args or args[0] == "r") and kw.get("mode", "r") == "r":
        threading.Event().wait()  # avformat_find_stream_info stuck decoding a hostile header
    return _open(file, *args, **kw)
av.open = hanging_open
""" + _HANG_EPILOGUE]


def cli_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for key in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"):
        env.pop(key, None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


@dataclass
class Run:
    """One finished ``gvr`` process: exit code, output, the JSON events, and how long it took."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    events: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        return next((e for e in reversed(self.events) if e.get("event") == "summary"), {})

    def files(self, status: str | None = None) -> list[dict]:
        return [e for e in self.events if e.get("event") == "file" and (status is None or e["status"] == status)]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(("error:", "gvr: error:"))]

    def has_traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr


def parse_events(stdout: str) -> list[dict]:
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def gvr(*args, timeout: float = 120, env: dict | None = None, prefix: list[str] | None = None, **popen) -> Run:
    """Run ``python -m gvrcli ARGS`` to completion (killed, and marked timed out, after ``timeout``)."""
    argv = [*(prefix or GVR), *map(str, args)]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        errors="surrogateescape", start_new_session=True, cwd=str(REPO), **popen,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    return Run(argv, proc.returncode, out, err, time.monotonic() - t0, timed_out, parse_events(out))


def start_gvr(*args, env: dict | None = None, prefix: list[str] | None = None, **popen) -> subprocess.Popen:
    """Start ``gvr`` in its own process group (so a kill reaches nothing else), stdout as lines."""
    return subprocess.Popen(
        [*(prefix or GVR), *map(str, args)], env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, errors="surrogateescape", bufsize=1, start_new_session=True, cwd=str(REPO), **popen,
    )


def leftovers(out: Path) -> list[str]:
    """Anything in OUTPUT_DIR that is not a finished output: partials, locks, temporary files."""
    if not out.exists():
        return []
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name.startswith("."))


def outputs(out: Path) -> list[Path]:
    if not out.exists():
        return []
    return sorted(p for p in out.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts))


def output_ok(output: Path, source_frames: int, source_size: tuple[int, int], scale: int = 2) -> str:
    """'' when ``output`` decodes completely with every frame at scale x the input, else why not."""
    try:
        facts = video_facts(output)
    except Exception as e:  # any decode failure means the output is not valid
        return f"does not decode ({type(e).__name__}: {e})"
    if facts["frames"] != source_frames:
        return f"{facts['frames']} frames, expected {source_frames}"
    want = (scale * source_size[0], scale * source_size[1])
    if (facts["width"], facts["height"]) != want:
        return f"size {facts['width']}x{facts['height']}, expected {want[0]}x{want[1]}"
    return ""


def clear_error_for(run: Run, path: Path, cause: str = "") -> str:
    """'' when stderr has exactly one error line naming ``path`` (and ``cause``), else what is wrong."""
    lines = [line for line in run.error_lines() if str(path) in line]
    if len(lines) != 1:
        return f"{len(lines)} error lines name {path.name!r} (stderr: {run.stderr[-600:]!r})"
    rest = lines[0].split(str(path), 1)[1].strip(" :")
    if not rest:
        return f"error line names the file but no cause: {lines[0]!r}"
    if cause and cause.lower() not in lines[0].lower():
        return f"error line does not mention {cause!r}: {lines[0]!r}"
    return ""


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass

