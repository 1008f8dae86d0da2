"""What "progress that never looks stuck" means, as checks on what gvr printed (issue #16).

Shared by ``tests/gvrcli/test_progress.py`` (a tiny clip, in-process) and
``benchmarks/progress_check.py`` (the issue's 480x270 clip at 40 steps, the real ``gvr`` process).
Each reader turns one mode's output into readings in the order printed; ``verdict`` checks them:

* the percentage never goes backwards and ends at 100;
* before the first output frame is written (``frames`` 0), at least ``rising`` readings with a
  strictly higher percentage each, every one of them naming a stage and an ETA.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    percent: float
    frames: int | None  # output frames written so far (None: this line does not say)
    stage: str | None
    eta: str | None  # as printed; None while there is no rate


def from_json(lines: list[str]) -> list[Reading]:
    out = []
    for line in lines:
        event = json.loads(line)
        if event.get("event") == "progress":
            eta = event["eta_seconds"]
            out.append(Reading(event["percent"], event["frames"], event["stage"], None if eta is None else str(eta)))
    return out


STATUS = re.compile(r"^status: .*?: (?P<stage>[^;]+); (?P<frames>\d+)/\d+ frames; ETA (?P<eta>\S+)")


def from_plain(lines: list[str]) -> list[Reading]:
    """``Progress: N%`` lines, each with the ``status:`` line after it (if any)."""
    out: list[Reading] = []
    for line in lines:
        if line.startswith("Progress: "):
            out.append(Reading(float(line.split()[1].rstrip("%")), None, None, None))
        elif (m := STATUS.match(line)) and out and out[-1].frames is None:
            eta = m["eta"] if m["eta"] != "?" else None
            out[-1] = Reading(out[-1].percent, int(m["frames"]), m["stage"], eta)
    return out


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
FILE_ROW = re.compile(r"(?P<percent>\d+)%\s+(?P<stage>[^;]+); (?P<frames>\d+)/\d+ frames; ETA (?P<eta>[\d:?]+)")
BATCH_ROW = re.compile(r"files \d+/\d+\s.*?(?P<percent>\d+)%\s+(?P<frames>\d+) frames; ETA (?P<eta>[\d:?]+)")


def from_screen(screen: str) -> list[Reading]:
    """The Rich display's rows, redraw after redraw: each file row, and the batch row."""
    out = []
    for row in re.split(r"[\r\n]+", ANSI.sub("", screen)):
        if m := FILE_ROW.search(row):
            eta = m["eta"] if m["eta"] != "?" else None
            out.append(Reading(float(m["percent"]), int(m["frames"]), m["stage"].strip(), eta))
        elif m := BATCH_ROW.search(row):
            out.append(Reading(float(m["percent"]), int(m["frames"]), None, m["eta"] if m["eta"] != "?" else None))
    return out


def verdict(readings: list[Reading], rising: int = 5) -> list[str]:
    """What is wrong with these readings (empty: all good)."""
    problems = []
    if not readings:
        return ["no progress at all"]
    percents = [r.percent for r in readings]
    back = [(a, b) for a, b in zip(percents, percents[1:]) if b < a]
    if back:
        problems.append(f"went backwards {len(back)} time(s), e.g. {back[0][0]} -> {back[0][1]}")
    if percents[-1] != 100:
        problems.append(f"ended at {percents[-1]}%, not 100%")
    before = rising_before_first_frame(readings)
    if len(before) < rising:
        problems.append(f"{len(before)} rising readings with a stage and an ETA before the first frame was written, wanted {rising}: {before}")
    return problems


def rising_before_first_frame(readings: list[Reading]) -> list[float]:
    """The strictly rising percentages, each with a stage and an ETA, before the first frame."""
    rising: list[float] = []
    for r in readings:
        if r.frames:
            break
        if r.frames == 0 and r.stage and r.eta is not None and (not rising or r.percent > rising[-1]):
            rising.append(r.percent)
    return rising


def run_in_pty(argv, env, timeout=60) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdin/stdout/stderr; return (exit code, everything it drew)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")
