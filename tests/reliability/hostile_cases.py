"""Hostile input: the cases of the data-safety review (issue #15), each run against the real CLI.

Every case builds its scene under a fresh ``base`` folder, runs ``gvr upscale`` (once or more),
and returns the list of problems it saw (empty = the case holds). Shared by
``test_hostile_inputs.py`` and ``benchmarks/reliability_report.py``. Common to all of them:

* nothing outside OUTPUT_DIR is written or deleted, and every input is byte-identical: a
  snapshot of ``base`` (every file's hash, every link's target, every folder, FIFO) before and
  after, leaving out only OUTPUT_DIR (input folders inside OUTPUT_DIR are kept in it);
* no traceback, no hang: each run ends within its stall timeout plus start-up;
* the exit code is the README's for the case, and with ``--json`` the last line is a
  ``summary`` event carrying that exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gvr_harness import Run, cli_env, gvr, kill_group, leftovers, output_ok, outputs, parse_events, start_gvr
from media_cases import write_video

STALL = 10  # --stall-timeout every case runs with: a hang would show up as a run longer than this
DEADLINE = STALL + 50  # start-up (imports, model load) on a loaded 2-core machine, plus the stall


@dataclass(frozen=True)
class Hostile:
    name: str
    item: str  # the item number(s)
    expect: str  # exit code(s) and what must hold
    run: Callable[[Path, Path], list[str]]
    slow: bool = False


# ---------------------------------------------------------------------------------------------
# Judging
# ---------------------------------------------------------------------------------------------


def snapshot(base: Path, out: Path | None = None, keep: tuple[Path, ...] = ()) -> dict[str, str]:
    """Everything under ``base`` (links not followed), except what is inside ``out`` unless it is
    inside one of ``keep`` (input folders that live inside OUTPUT_DIR). Iterative: a case nests
    folders a thousand deep."""
    skip = os.path.abspath(out) if out is not None else None
    kept = [os.path.abspath(k) for k in keep]
    found: dict[str, str] = {}
    stack = [os.path.abspath(base)]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            p = e.path
            inside_out = skip is not None and (p == skip or p.startswith(skip + os.sep))
            if inside_out and not any(p == k or p.startswith(k + os.sep) or k.startswith(p + os.sep) for k in kept):
                continue
            rel = os.path.relpath(p, base)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = "dir"
                stack.append(p)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = "file:" + hashlib.sha256(Path(p).read_bytes()).hexdigest() + f":{st.st_mtime_ns}"
            else:
                found[rel] = f"special:{stat.S_IFMT(st.st_mode)}"
    return found


def diff(before: dict, after: dict) -> list[str]:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return [f"outside OUTPUT_DIR or an input changed: {changed[:5]}"] if changed else []


def judge_run(run: Run, codes: tuple[int, ...], as_json: bool = True, deadline: float = DEADLINE) -> list[str]:
    problems = []
    if run.timed_out:
        problems.append(f"hung (killed after {run.seconds:.0f} s)")
    elif run.seconds > deadline:
        problems.append(f"took {run.seconds:.0f} s (deadline {deadline} s)")
    if run.has_traceback():
        problems.append("traceback: " + run.stderr.strip().splitlines()[-1][:160])
    if run.returncode not in codes:
        last = (run.stderr.strip().splitlines() or [""])[-1][:200]
        problems.append(f"exit {run.returncode}, expected {'/'.join(map(str, codes))}: {last}")
    if as_json:
        if not run.events or run.events[-1].get("event") != "summary":
            problems.append("no JSON summary at the end")
        elif run.events[-1].get("exit_code") != run.returncode:
            problems.append(f"summary says exit {run.events[-1].get('exit_code')}, process {run.returncode}")
    return problems


def upscale(*args, timeout: float = DEADLINE + 30, **kw) -> Run:
    return gvr("upscale", *args, "--json", "--stall-timeout", STALL, timeout=timeout, **kw)


def statuses(*runs: Run) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in runs:
        for e in run.files():
            found.setdefault(Path(e["source"]).name, []).append(e["status"])
    return found


def _error_names(run: Run, path: Path, word: str) -> list[str]:
    lines = [x for x in run.error_lines() if str(path) in x]
    if len(lines) != 1:
        return [f"{len(lines)} error lines name {path.name[:40]!r}: {run.stderr[-300:]!r}"]
    if word.lower() not in lines[0].lower():
        return [f"error line does not say {word!r}: {lines[0][:200]!r}"]
    return []


def _refused(base: Path, args: list, word: str, **kw) -> list[str]:
    """Exit 2, one error line mentioning ``word``, and nothing at all changed under ``base``."""
    before = snapshot(base)
    run = upscale(*args, **kw)
    problems = judge_run(run, (2,))
    if word.lower() not in run.stderr.lower():
        problems.append(f"error does not mention {word!r}: {run.stderr.strip()[-200:]!r}")
    if [e["event"] for e in run.events] != ["summary"]:
        problems.append("touched a video before refusing")
    return problems + diff(before, snapshot(base))


# ---------------------------------------------------------------------------------------------
# 1. Outputs landing on inputs, or outside OUTPUT_DIR
# ---------------------------------------------------------------------------------------------


def nested_input_in_output(overwrite: bool):
    def case(base: Path, model: Path) -> list[str]:
        x = base / "X"
        write_video(x / "a" / "clip.mp4", frames=2)
        write_video(x / "a" / "a" / "clip.mp4", frames=3)
        return _refused(base, [x / "a", x, "--model", model, *(["--overwrite"] if overwrite else [])], "input directory")

    return case


def output_subfolder_links_to(where: str):
    def case(base: Path, model: Path) -> list[str]:
        src, out = base / "in", base / "out"
        write_video(src / "top.mp4", frames=2)
        write_video(src / "sub" / "clip.mp4", frames=2)
        out.mkdir()
        if where == "input":
            (out / "sub").symlink_to(src / "sub")
        else:
            (base / "elsewhere").mkdir()
            (out / "sub").symlink_to(base / "elsewhere")
        return _refused(base, [src, out, "--model", model], "input directory" if where == "input" else "outside")

    return case


def followed_link_to_output(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    write_video(src / "clip.mp4", frames=2)
    out.mkdir()
    (src / "link").symlink_to(out)
    before = snapshot(base, out)
    problems = []
    for i in range(2):  # the rerun must not pick up the first run's output through the link
        run = upscale(src, out, "--model", model, "--follow-symlinks")
        problems += judge_run(run, (0,))
        names = sorted(p.relative_to(out).as_posix() for p in outputs(out))
        if names != ["clip.mp4"]:
            problems.append(f"run {i + 1}: outputs {names}, expected only clip.mp4")
    return problems + diff(before, snapshot(base, out))


# ---------------------------------------------------------------------------------------------
# 2. Stale locks naming files outside OUTPUT_DIR; a dead worker seen from another directory
# ---------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def planted_stale_locks(base: Path, model: Path) -> list[str]:
    src, out, elsewhere = base / "in", base / "out", base / "elsewhere"
    write_video(src / "a.mp4", frames=2)
    elsewhere.mkdir()
    (elsewhere / "report.mp4").write_bytes(b"someone's report")
    (elsewhere / ".report.gvr-partial-0123456789ab.mp4").write_bytes(b"not ours")
    (out / ".gvr-locks").mkdir(parents=True)
    dead = _dead_pid()
    for name, output in (
        ("0000000000000000aaaa.lock", str(elsewhere / "report.mp4")),  # absolute, outside
        ("0000000000000000bbbb.lock", "../elsewhere/report.mp4"),  # relative, climbing out
        ("0000000000000000cccc.lock", "sub/../../elsewhere/report.mp4"),
    ):
        body = {"pid": dead, "host": socket.gethostname(), "token": "f" * 32, "output": output}
        (out / ".gvr-locks" / name).write_text(json.dumps(body))
    before = snapshot(base, out)
    run = upscale(src, out, "--model", model)
    problems = judge_run(run, (0,)) + diff(before, snapshot(base, out))
    if leftovers(out):
        problems.append(f"left in OUTPUT_DIR: {leftovers(out)}")
    return problems


_DEAD_WORKER = """
import os, sys
from pathlib import Path
from gvrcli.farm.claims import ClaimBoard
from gvrbase import atomic
board = ClaimBoard(Path("out"))  # relative: this worker ran from another working directory
claim = board.try_claim(Path("out") / "a.mp4")
atomic.partial_path(Path("out") / "a.mp4", claim.token).write_bytes(b"half a video")
os._exit(0)  # dies holding the claim
"""


def dead_worker_seen_from_elsewhere(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    a = write_video(src / "a.mp4", frames=2)
    env = cli_env()
    subprocess.run([sys.executable, "-c", _DEAD_WORKER], cwd=base, env=env, check=True, timeout=60)
    if len(leftovers(out)) != 2:
        return [f"the dead worker did not leave a lock and a partial: {leftovers(out)}"]
    before = snapshot(base, out)
    run = upscale(src, out.resolve(), "--model", model)  # absolute path, from the repository
    problems = judge_run(run, (0,)) + diff(before, snapshot(base, out))
    if leftovers(out):
        problems.append(f"the dead worker's lock or partial was left: {leftovers(out)}")
    if output_ok(out / "a.mp4", 2, (64, 48)):
        problems.append(f"{a.name} not upscaled")
    return problems


# ---------------------------------------------------------------------------------------------
# 3, 4. Collisions across shards; two workers reaching one OUTPUT_DIR by different paths
# ---------------------------------------------------------------------------------------------


def colliding_outputs_across_shards(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    write_video(src / "a.avi", frames=2, codec="mpeg4")  # hevc fits neither .avi nor .webm: both -> a.mkv
    write_video(src / "a.webm", frames=2, codec="libvpx-vp9")
    before = snapshot(base, out)
    problems = []
    for extra in ([], ["--overwrite"]):
        runs = [upscale(src, out, "--model", model, "--codec", "hevc", "--shard", f"{i}/2", *extra) for i in range(2)]
        for run in runs:
            problems += judge_run(run, (0, 1))
        got = statuses(*runs)
        if sorted(s for v in got.values() for s in v) != ["done", "failed"]:
            problems.append(f"{extra or 'first run'}: expected one done and one failed (collision), got {got}")
        failed = [e for r in runs for e in r.files("failed")]
        if failed and "collide" not in failed[0]["reason"]:
            problems.append(f"failure is not the collision: {failed[0]['reason']}")
    if sorted(p.name for p in outputs(out)) != ["a.mkv"]:
        problems.append(f"outputs {sorted(p.name for p in outputs(out))}")
    return problems + diff(before, snapshot(base, out))


def two_paths_to_one_output(base: Path, model: Path) -> list[str]:
    src, out, alias = base / "in", base / "out", base / "alias"
    clips = [write_video(src / f"clip{i}.mp4", frames=8, size=(96, 64)) for i in range(4)]
    out.mkdir()
    alias.symlink_to(out)
    before = snapshot(base, out)
    args = ["--model", model, "--steps", "40", "--json", "--stall-timeout", STALL, "--progress-interval", "0"]
    procs = [start_gvr("upscale", src, o, *args) for o in (out, alias)]
    runs = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            kill_group(p)
            stdout, stderr = p.communicate()
        runs.append(Run(p.args, p.returncode, stdout, stderr, 0.0, False, parse_events(stdout)))
    problems = []
    for run in runs:
        problems += judge_run(run, (0,), deadline=240)
    done = Counter(Path(e["source"]).name for r in runs for e in r.files("done"))
    if sorted(done) != sorted(c.name for c in clips) or max(done.values(), default=0) != 1:
        problems.append(f"each file must be done exactly once: {dict(done)}")
    if leftovers(out):
        problems.append(f"left: {leftovers(out)}")
    return problems + diff(before, snapshot(base, out))


# ---------------------------------------------------------------------------------------------
# 5. Names that look like gvr's own files
# ---------------------------------------------------------------------------------------------


def partial_looking_input(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    clip = write_video(src / "clip.mp4", frames=2)
    odd = write_video(src / ".clip.gvr-partial-0123456789ab.mp4", frames=2)
    before = snapshot(base, out)
    run = upscale(odd, clip, out, "--model", model)
    problems = judge_run(run, (1,)) + _error_names(run, odd, "reserved") + diff(before, snapshot(base, out))
    if statuses(run).get("clip.mp4") != ["done"] or not (out / "clip.mp4").is_file():
        problems.append(f"clip.mp4 not done: {statuses(run)}")
    return problems


# ---------------------------------------------------------------------------------------------
# 6. The lock folder and lock files: wrong types, malformed, FIFOs
# ---------------------------------------------------------------------------------------------


def lock_folder_is(kind: str):
    def case(base: Path, model: Path) -> list[str]:
        src, out = base / "in", base / "out"
        write_video(src / "a.mp4", frames=2)
        out.mkdir()
        locks = out / ".gvr-locks"
        if kind == "file":
            locks.write_text("not a folder")
        elif kind == "fifo":
            os.mkfifo(locks)
        else:
            (base / "elsewhere").mkdir()
            locks.symlink_to(base / "elsewhere")
        return _refused(base, [src, out, "--model", model], ".gvr-locks")

    return case


def malformed_locks(base: Path, model: Path) -> list[str]:
    from gvrcli.farm.claims import ClaimBoard

    src, out, elsewhere = base / "in", base / "out", base / "elsewhere"
    names = [f"{c}.mp4" for c in "abcdefg"]
    for n in names:
        write_video(src / n, frames=2)
    elsewhere.mkdir()
    (elsewhere / "target").write_text("keep me")
    board = ClaimBoard(out)
    lock = {n: board.lock_path(out / n) for n in names}
    lock["a.mp4"].parent.mkdir(parents=True)
    host = socket.gethostname()
    lock["a.mp4"].write_text("[1, 2]")  # JSON, not an object
    lock["b.mp4"].write_text(json.dumps({"pid": "x", "host": host, "token": "t"}))  # non-integer pid
    os.mkfifo(lock["c.mp4"])  # a FIFO: reading it would block forever
    lock["d.mp4"].mkdir()  # a folder
    lock["e.mp4"].symlink_to(elsewhere / "target")  # a link out of OUTPUT_DIR
    lock["f.mp4"].write_text(json.dumps({"pid": -1, "host": host, "token": "t"}))  # kill(-1, 0) is "alive"
    lock["g.mp4"].write_text(json.dumps({"pid": 10**30, "host": host, "token": "t"}))  # overflows kill()
    locks = lock["a.mp4"].parent
    os.mkfifo(locks / "zz-unrelated.lock")  # found only by the end-of-run sweep
    (locks / "yy-binary.lock").write_bytes(os.urandom(300))
    (locks / "xx-huge.lock").write_text(json.dumps({"pid": 1, "host": host, "token": "t" * 200_000}))
    before = snapshot(base, out)
    run = upscale(src, out, "--model", model)
    problems = judge_run(run, (0,)) + diff(before, snapshot(base, out))
    got = statuses(run)
    if any(got.get(n) != ["done"] for n in names):
        problems.append(f"every file must be done: {got}")
    if leftovers(out):
        problems.append(f"left: {leftovers(out)}")
    return problems


# ---------------------------------------------------------------------------------------------
# 7. Names too long for the partial or the output; a file and a folder with one relative path
# ---------------------------------------------------------------------------------------------


def long_names(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    long = write_video(src / ("n" * 240 + ".mp4"), frames=2)
    too_long = write_video(src / ("m" * 252 + ".ts"), frames=2)  # .ts -> .mkv with ffv1: 256 bytes
    ok = write_video(src / "ok.mp4", frames=2)
    before = snapshot(base, out)
    run = upscale(src, out, "--model", model, "--codec", "ffv1")
    problems = judge_run(run, (1,)) + diff(before, snapshot(base, out))
    got = statuses(run)
    if got.get(long.name) != ["done"] or got.get(ok.name) != ["done"] or got.get(too_long.name) != ["failed"]:
        problems.append(f"expected the 240-character name and ok.mp4 done, the 256-byte output failed: "
                        f"{ {k[:12]: v for k, v in got.items()} }")
    problems += _error_names(run, too_long, "too long")
    if leftovers(out):
        problems.append(f"left: {[x[:40] for x in leftovers(out)]}")
    return problems


def file_and_folder_same_path(file_first: bool):
    def case(base: Path, model: Path) -> list[str]:
        one, two, out = base / "in1", base / "in2", base / "out"
        f = write_video(one / "x.mp4", frames=2)
        inner = write_video(two / "x.mp4" / "clip.mp4", frames=2)
        roots = [one, two] if file_first else [two, one]
        before = snapshot(base, out)
        run = upscale(*roots, out, "--model", model)
        problems = judge_run(run, (1,)) + diff(before, snapshot(base, out))
        loser = inner if file_first else f
        problems += _error_names(run, loser, "collide")
        if len(run.files("done")) != 1:
            problems.append(f"expected one done: {statuses(run)}")
        return problems

    return case


# ---------------------------------------------------------------------------------------------
# 10, 11, 12. Deep trees; playlists and lists of other files; frames growing mid-stream
# ---------------------------------------------------------------------------------------------


def deep_tree(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    write_video(src / "top.mp4", frames=2)
    d = src
    for _ in range(1000):
        d = d / "d"
        os.mkdir(d)
    write_video(base / "bottom.mp4", frames=2).rename(d / "bottom.mp4")
    try:
        before = snapshot(base, out)
        run = upscale(src, out, "--model", model)
        problems = judge_run(run, (0,)) + diff(before, snapshot(base, out))
        if sorted(statuses(run)) != ["bottom.mp4", "top.mp4"] or len(run.files("done")) != 2:
            problems.append(f"both files must be done: {statuses(run)}")
    finally:
        for tree in (src, out):  # shutil.rmtree (pytest's clean-up) recurses once per level
            remove_deep(tree)
    return problems


def remove_deep(top: Path) -> None:
    """Delete a folder tree of any depth without recursion."""
    stack = [str(top)]
    while stack:
        d = stack[-1]
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            stack.pop()
            continue
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        for e in entries:
            if not e.is_dir(follow_symlinks=False):
                os.unlink(e.path)
        if subdirs:
            stack.extend(subdirs)
        else:
            os.rmdir(d)
            stack.pop()


def playlists(base: Path, model: Path) -> list[str]:
    src, out, elsewhere = base / "in", base / "out", base / "elsewhere"
    secret = write_video(elsewhere / "secret.mp4", frames=2)
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n"
    src.mkdir(parents=True)
    (src / "list.m3u8").write_text(hls)  # walked, no video extension: not an input
    (src / "playlist.mp4").write_text(hls)  # walked, video extension: a failed input
    (src / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    ok = write_video(src / "ok.mp4", frames=2)
    before = snapshot(base, out)
    problems = []
    run = upscale(src, out, "--model", model)
    problems += judge_run(run, (1,)) + _error_names(run, src / "playlist.mp4", "not")
    if statuses(run) != {"ok.mp4": ["done"], "playlist.mp4": ["failed"]}:
        problems.append(f"walk: {statuses(run)}")
    for name in ("list.m3u8", "list.ffconcat"):  # named explicitly: refused
        run = upscale(src / name, ok, base / "out2", "--model", model)
        problems += judge_run(run, (1,)) + _error_names(run, src / name, "not")
    if {p.stem for p in outputs(out) + outputs(base / "out2")} != {"ok"}:
        problems.append(f"a playlist was upscaled: {[p.name for p in outputs(out) + outputs(base / 'out2')]}")
    after = snapshot(base, out)
    after = {k: v for k, v in after.items() if not k.startswith("out2")}
    return problems + diff(before, after)


def _ts(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """One MPEG-TS whose frame size changes mid-stream (segments written back to back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for i, size in enumerate(sizes):
            seg = write_video(path.with_name(f".seg{i}.ts"), frames=3, size=size)
            f.write(seg.read_bytes())
            seg.unlink()
    return path


def frames_growing_mid_stream(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    grow = _ts(src / "grow.ts", [(64, 48), (256, 256)])  # 65536 pixels past a 10000 limit
    turn = _ts(src / "turn.ts", [(64, 48), (48, 64)])  # within the limit, but not the probed size
    ok = write_video(src / "ok.mp4", frames=2)
    before = snapshot(base, out)
    run = upscale(src, out, "--model", model, "--max-pixels", "10000")
    problems = judge_run(run, (1,)) + diff(before, snapshot(base, out))
    problems += _error_names(run, grow, "256x256") + _error_names(run, turn, "48x64")
    if statuses(run).get(ok.name) != ["done"] or {p.name for p in outputs(out)} != {"ok.mp4"}:
        problems.append(f"only ok.mp4 may be written: {statuses(run)}")
    return problems


# ---------------------------------------------------------------------------------------------
# Judgement calls: walked FIFOs; files another live worker holds
# ---------------------------------------------------------------------------------------------


def walked_fifos(base: Path, model: Path) -> list[str]:
    src, out = base / "in", base / "out"
    write_video(src / "ok.mp4", frames=2)
    src.joinpath("sub").mkdir()
    os.mkfifo(src / "sub" / "pipe.mp4")  # a video extension: a failed input
    os.mkfifo(src / "notes")  # no video extension: not an input
    before = snapshot(base, out)
    run = upscale(src, out, "--model", model)
    problems = judge_run(run, (1,)) + _error_names(run, src / "sub" / "pipe.mp4", "not a regular file")
    problems += diff(before, snapshot(base, out))
    if statuses(run) != {"ok.mp4": ["done"], "pipe.mp4": ["failed"]}:
        problems.append(f"got {statuses(run)}")
    return problems


def live_lock_of_another_host(base: Path, model: Path) -> list[str]:
    """A fresh lock from another host is respected, and the worker waits for it instead of
    calling the file done: when that lock goes away (its worker gave up), this worker does it."""
    from gvrcli.farm.claims import ClaimBoard

    src, out = base / "in", base / "out"
    write_video(src / "a.mp4", frames=2)
    write_video(src / "b.mp4", frames=2)
    lock = ClaimBoard(out).lock_path(out / "a.mp4")
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 4242, "host": "render-node-17", "token": "f" * 32, "output": "a.mp4"}))
    before = snapshot(base, out)
    proc = start_gvr("upscale", src, out, "--model", model, "--json", "--stall-timeout", STALL)
    problems, events = [], []
    t0 = time.monotonic()
    for line in proc.stdout:
        events += parse_events(line)
        if any(e.get("event") == "file" and e["source"].endswith("b.mp4") for e in events):
            break
    time.sleep(2.5)
    if proc.poll() is not None:
        problems.append(f"exited (rc {proc.returncode}) while another worker held a.mp4")
    if (out / "a.mp4").exists():
        problems.append("processed a file a live worker holds")
    lock.unlink()  # the other worker gives up on it
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
    run = Run(proc.args, proc.returncode, stdout, stderr, time.monotonic() - t0, False, events + parse_events(stdout))
    problems += judge_run(run, (0,), deadline=90)
    if "waiting for other workers" not in stderr:
        problems.append(f"no message that it waits: {stderr[-200:]!r}")
    if statuses(run) != {"a.mp4": ["done"], "b.mp4": ["done"]}:
        problems.append(f"got {statuses(run)}")
    if leftovers(out):
        problems.append(f"left: {leftovers(out)}")
    return problems + diff(before, snapshot(base, out))


HOSTILE = [
    Hostile("output-lands-on-nested-input", "1", "exit 2", nested_input_in_output(False)),
    Hostile("output-lands-on-nested-input-overwrite", "1", "exit 2", nested_input_in_output(True)),
    Hostile("output-subfolder-links-to-input", "1", "exit 2", output_subfolder_links_to("input")),
    Hostile("output-subfolder-links-elsewhere", "1", "exit 2", output_subfolder_links_to("elsewhere")),
    Hostile("followed-link-to-output-dir", "1", "exit 0, outputs not re-read", followed_link_to_output),
    Hostile("stale-locks-naming-outside-files", "2", "exit 0, nothing outside touched", planted_stale_locks),
    Hostile("dead-worker-seen-from-another-cwd", "2", "exit 0, swept", dead_worker_seen_from_elsewhere),
    Hostile("colliding-outputs-across-shards", "3", "one done, one failed", colliding_outputs_across_shards),
    Hostile("two-paths-to-one-output-dir", "4", "each file once", two_paths_to_one_output, slow=True),
    Hostile("input-named-like-a-partial", "5", "exit 1, refused", partial_looking_input),
    Hostile("lock-folder-is-a-file", "6", "exit 2", lock_folder_is("file")),
    Hostile("lock-folder-is-a-fifo", "6", "exit 2, no hang", lock_folder_is("fifo")),
    Hostile("lock-folder-links-elsewhere", "6", "exit 2", lock_folder_is("link")),
    Hostile("malformed-locks-and-fifos", "6", "exit 0, no hang", malformed_locks),
    Hostile("names-too-long-for-partial-or-output", "7", "exit 1", long_names),
    Hostile("file-and-folder-one-path-file-first", "7", "exit 1, collision", file_and_folder_same_path(True)),
    Hostile("file-and-folder-one-path-folder-first", "7", "exit 1, collision", file_and_folder_same_path(False)),
    Hostile("tree-1000-levels-deep", "10", "exit 0", deep_tree),
    Hostile("playlists-and-concat-lists", "11", "exit 1, refused", playlists),
    Hostile("frames-growing-mid-stream", "12", "exit 1", frames_growing_mid_stream),
    Hostile("fifos-found-by-a-walk", "judgement", "exit 1 for pipe.mp4", walked_fifos),
    Hostile("live-lock-of-another-host", "judgement", "waits, then exit 0", live_lock_of_another_host, slow=True),
]
