"""Check that ``gvr upscale`` progress never looks stuck (issue #16), on the real ``gvr`` process.

    python benchmarks/progress_check.py [--size 480x270] [--frames 20] [--steps 40] [--interval 2]
                                        [--modes json,plain,rich] [--model FILE]

Upscales one generated clip once per mode and checks, in what that mode printed, that the
percentage never goes backwards and ends at 100, and that before the first output frame is
written there are at least ``--rising`` (5) readings with a strictly higher percentage, each with
a stage and an ETA:

* ``json``: ``--json`` progress events (``percent``, ``frames``, ``stage``, ``eta_seconds``);
* ``plain``: stdout a pipe: ``Progress: N%`` lines and the ``status:`` line after each;
* ``rich``: in a pseudo-terminal: the Rich display's file and batch rows, redraw after redraw.

Prints one verdict line per mode (PASS/FAIL, the readings before the first frame, the wall time)
and exits 1 if any fails. At the defaults (the built-in tiny model, 40 steps on 960x540 output)
one mode takes minutes on a CPU. The checks are ``tests/progress_checks.py``, which the test
suite runs on a tiny clip.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_upscale import make_clip  # noqa: E402
from tests.progress_checks import from_json, from_plain, from_screen, rising_before_first_frame, run_in_pty, verdict  # noqa: E402


def run_piped(argv: list[str], env: dict) -> str:
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--rising", type=int, default=5)
    ap.add_argument("--modes", default="json,plain,rich")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("NO_COLOR", None)
    failed = False
    with tempfile.TemporaryDirectory(prefix="gvr-progress-") as tmp:
        clip = make_clip(Path(tmp) / "in" / "clip.mp4", args.frames, width, height)
        for mode in args.modes.split(","):
            argv = [sys.executable, "-m", "gvrcli", "upscale", str(clip), str(Path(tmp) / f"out-{mode}")]
            argv += ["--steps", str(args.steps), "--progress-interval", str(args.interval)]
            argv += ["--model", args.model] if args.model else []
            started = time.monotonic()
            if mode == "json":
                readings = from_json(run_piped([*argv, "--json"], env).splitlines())
            elif mode == "plain":
                readings = from_plain(run_piped(argv, env).splitlines())
            elif mode == "rich":
                readings = from_screen(run_in_pty(argv, {**env, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "30"}, timeout=None)[1])
            else:
                raise SystemExit(f"unknown mode {mode!r} (json, plain, rich)")
            seconds = time.monotonic() - started
            problems = verdict(readings, args.rising)
            failed |= bool(problems)
            rising = rising_before_first_frame(readings)
            print(
                f"{mode}: {'FAIL' if problems else 'PASS'}; {len(readings)} readings, {len(rising)} rising before the "
                f"first frame ({', '.join(f'{p:g}%' for p in rising[:12])}{' ...' if len(rising) > 12 else ''}); "
                f"last {readings[-1].percent if readings else None}%; {seconds:.0f} s" + "".join(f"\n  {p}" for p in problems),
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
