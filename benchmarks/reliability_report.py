"""Reliability report: run the whole failure matrix against the real ``gvr`` CLI and print a table.

    python benchmarks/reliability_report.py [--model FILE.onnx] [--only inputs|models|options|faults|hostile|export] [--json]

Every case runs ``python -m gvrcli upscale`` in a subprocess on inputs generated on the spot
(``tests/reliability/media_cases.py``; the tests assert on the same matrix): broken, hostile and
awkward inputs, symbolic links, bad models, bad options, SIGKILL-and-rerun, SIGINT/SIGTERM, a
write failure (RLIMIT_FSIZE), a hanging decoder and prober, 2 and 4 workers sharing an
output directory with kills in between, the hostile cases of issue #15
(``tests/reliability/hostile_cases.py``: outputs landing on inputs or outside OUTPUT_DIR,
planted and malformed locks, collisions across shards, playlists, ...) and of issue #23
(``tests/reliability/surface_cases.py``: a header claiming 10^15 frames, a FIFO in the shared
compiled-model cache, unusable latent inputs and their collisions, a full disk, prompt sidecar
links, forged bundles, out-of-range options, a stopped export), and the export round
trip (``gvr export`` then ``gvr upscale`` on its artefact; ``gvr export`` without the extra). Each input case runs beside a good companion video, so a
case that takes the batch down shows up as a lost output.

Columns: ``clear`` errors (exit code as documented, one line naming the file and the cause, no
traceback), ``unclear`` (an error was due but came as a traceback, several lines, the wrong exit
code or a hang), ``valid`` outputs (decode completely, every frame, scale x the input), ``lost``
outputs (expected, absent or invalid at the end: must be 0), ``modified`` inputs (hashes before
and after: must be 0), ``left`` (temporary, partial or lock files left in OUTPUT_DIR: should be 0).
Exits 1 when anything was lost or modified. Runs the fake bilinear model by default (the matrix
tests the runtime, not the network); ``--model`` runs a real one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

from gvr_harness import (  # noqa: E402
    HANG_IN_DECODE,
    HANG_IN_PROBE,
    Run,
    clear_error_for,
    gvr,
    kill_group,
    leftovers,
    output_ok,
    outputs,
    parse_events,
    start_gvr,
)
from media_cases import (  # noqa: E402
    ALL,
    build_fake_onnx,
    can_drop_dac_override,
    hash_tree,
    video_facts,
    without_dac_override,
    write_video,
)
from model_cases import BAD_MODELS, BAD_OPTIONS, option_output  # noqa: E402
from hostile_cases import HOSTILE  # noqa: E402
from surface_cases import SURFACES  # noqa: E402


@dataclass
class Row:
    case: str
    group: str
    expect: str
    ok: bool = True
    clear: int = 0
    unclear: int = 0
    valid: int = 0
    lost: int = 0
    modified: int = 0
    left: int = 0
    seconds: float = 0.0
    note: str = ""

    def fail(self, why: str) -> None:
        self.ok = False
        self.note = (self.note + "; " if self.note else "") + why


def _modified(before: dict, after: dict) -> int:
    return len(set(before) ^ set(after)) + sum(1 for k in before if k in after and before[k] != after[k])


def _judge_outputs(row: Row, run: Run, expected: list[Path]) -> None:
    """Each expected source must have exactly one valid output at the end."""
    done = {e["source"]: e["output"] for e in run.files() if e["status"] in ("done", "skipped")}
    for src in expected:
        out = done.get(str(src))
        if out is None:
            row.lost += 1
            row.fail(f"no output for {src.name}")
            continue
        facts = video_facts(src)
        why = output_ok(Path(out), facts["frames"], (facts["width"], facts["height"]))
        if why:
            row.lost += 1
            row.fail(f"{src.name}: {why}")
        else:
            row.valid += 1


def _one_line_refusal(run: Run, code: int) -> str:
    lines = [x for x in run.stderr.splitlines() if x.strip() and "CUDA provider did not load" not in x]
    if run.timed_out:
        return "hung"
    if run.returncode != code:
        return f"exit {run.returncode}, expected {code}"
    if run.has_traceback():
        return "traceback"
    if len(lines) != 1 or not lines[0].startswith("gvr: error:"):
        return f"{len(lines)} stderr lines"
    return ""


# ---------------------------------------------------------------------------------------------
# Inputs: broken, hostile, awkward, links
# ---------------------------------------------------------------------------------------------


def input_case(case, base: Path, model: Path) -> Row:
    row = Row(case.name, case.group, case.expect)
    preexec = None
    if case.needs == "no-dac-override":
        if not can_drop_dac_override():
            row.fail("skipped: cannot make mode bits bind")
            return row
        preexec = without_dac_override
    src = base / "src"
    root = src / "in"
    target = case.target(root)
    explicit = target != root
    companion = write_video((root if not explicit else src / "companion") / "zz-companion.mp4")
    inputs = [target, companion] if explicit else [root]
    before = hash_tree(src)
    out = base / "out"
    t0 = time.monotonic()
    run = gvr("upscale", *inputs, out, "--model", model, "--json", timeout=120, preexec_fn=preexec)
    row.seconds = time.monotonic() - t0
    row.modified = _modified(before, hash_tree(src))
    row.left = len(leftovers(out))
    if run.timed_out:
        row.fail("hung")
    if run.has_traceback():
        row.fail("traceback")
    expected = [companion]
    if case.expect == "error":
        why = clear_error_for(run, target, case.cause)
        if not why and run.returncode == 1 and not any(p.stem == target.stem for p in outputs(out)):
            row.clear += 1
        else:
            row.unclear += 1
            row.fail((why.split(" (stderr:")[0] if why else f"exit {run.returncode}") + f"; exit {run.returncode}: "
                     + (run.stderr.strip().splitlines() or [""])[-1][:120])
    elif case.expect == "upscale":
        expected.append(target)
        if run.returncode != 0:
            row.fail(f"exit {run.returncode}")
    elif case.expect == "still":
        if run.returncode == 0:
            expected.append(target)
        elif run.returncode == 1 and not clear_error_for(run, target, "image"):
            row.clear += 1
            row.note = "refused: " + next(x for x in run.error_lines() if str(target) in x).split(": ", 2)[-1]
        else:
            row.unclear += 1
            row.fail(f"exit {run.returncode}")
    elif case.expect == "ignored":
        # Every regular video under the root reached without following a link, and nothing else.
        real = [p for p in root.rglob("*.mp4") if p.is_file() and not any(q.is_symlink() for q in [p, *p.parents])]
        expected = sorted(set(real) | {companion})
        extra = {o.name for o in outputs(out)} - {p.name for p in expected}
        if extra:
            row.fail(f"followed a link: {sorted(extra)}")
    _judge_outputs(row, run, expected)
    if row.left:
        row.fail(f"left {leftovers(out)}")
    return row


# ---------------------------------------------------------------------------------------------
# Bad models and options
# ---------------------------------------------------------------------------------------------


def refusal_case(name: str, group: str, base: Path, model: Path, args: list, out: Path, video_dir: Path, word: str) -> Row:
    row = Row(name, group, "exit 2")
    before = hash_tree(video_dir)
    out_existed = out.exists()
    run = gvr("upscale", video_dir, out, "--model", model, "--json", *args, timeout=60)
    row.seconds = run.seconds
    row.modified = _modified(before, hash_tree(video_dir))
    why = _one_line_refusal(run, 2)
    if not why and word.lower() not in run.stderr.lower():
        why = f"error does not mention {word!r}"
    if not why and [e["event"] for e in run.events] != ["summary"]:
        why = "touched a video before refusing"
    if not why and not out_existed and out.exists() and out != video_dir / "out":
        why = "created the output directory"
    if why:
        row.unclear += 1
        row.fail(why)
    else:
        row.clear += 1
    return row


def model_cases(base: Path, model: Path) -> list[Row]:
    rows = []
    for i, (name, (build, word)) in enumerate(BAD_MODELS.items()):
        d = base / f"m{i}"
        (d / "models").mkdir(parents=True)
        bad = build(model, d / "models")
        video_dir = write_video(d / "in" / "a.mp4", frames=2).parent
        rows.append(refusal_case(name, "model", d, bad, [], d / "out", video_dir, word))
    return rows


def option_cases(base: Path, model: Path) -> list[Row]:
    rows = []
    for i, (name, (extra, where, word)) in enumerate(BAD_OPTIONS.items()):
        d = base / f"o{i}"
        video_dir = write_video(d / "in" / "a.mp4", frames=2).parent
        out = option_output(where, d, video_dir)
        rows.append(refusal_case(name, "option", d, model, extra, out, video_dir, word))
    if can_drop_dac_override():
        d = base / "o-unwritable"
        video_dir = write_video(d / "in" / "a.mp4", frames=2).parent
        (d / "locked").mkdir(mode=0o555)
        (d / "locked").chmod(0o555)
        row = Row("output-unwritable", "option", "exit 2")
        run = gvr("upscale", video_dir, d / "locked" / "out", "--model", model, "--json", timeout=60,
                  preexec_fn=without_dac_override)
        row.seconds = run.seconds
        why = _one_line_refusal(run, 2)
        row.clear, row.unclear = (0, 1) if why else (1, 0)
        if why:
            row.fail(why)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------

FSIZE, FFRAMES = (96, 64), 16


def _clips(root: Path, n: int, frames: int = FFRAMES) -> list[Path]:
    return [write_video(root / f"sub{i % 2}" / f"clip{i}.mp4", frames=frames, size=FSIZE) for i in range(n)]


def _wait_for_line(proc, prefix: str, nth: int = 1, events: list | None = None) -> bool:
    seen = 0
    for line in proc.stdout:
        if events is not None:
            events += parse_events(line)
        if line.startswith(prefix) or (prefix.startswith('"') and prefix in line):
            seen += 1
            if seen >= nth:
                return True
    return False


def _finish(row: Row, root: Path, out: Path, model: Path, before: dict, expected: list[Path]) -> None:
    """Rerun to completion and judge: every expected output valid, nothing modified or left."""
    rerun = gvr("upscale", root, out, "--model", model, "--json", timeout=300)
    if rerun.returncode != 0:
        row.fail(f"rerun exit {rerun.returncode}")
    _judge_outputs(row, rerun, expected)
    row.modified = _modified(before, hash_tree(root))
    row.left = len(leftovers(out))
    if row.left:
        row.fail(f"left {leftovers(out)}")


def fault_kill9(base: Path, model: Path) -> Row:
    row = Row("sigkill-x3-then-rerun", "fault", "resume")
    rng = random.Random(20261126)
    root, out = base / "in", base / "out"
    clips = _clips(root, 5)
    before = hash_tree(root)
    t0 = time.monotonic()
    for kind, where in [("time", rng.uniform(0.3, 1.5)), ("start:", rng.randint(1, 2)), ("done:", rng.randint(1, 3))]:
        proc = start_gvr("upscale", root, out, "--model", model, "--steps", "60", "--progress-interval", "0")
        if kind == "time":
            time.sleep(where)
        else:
            _wait_for_line(proc, kind, where)
            time.sleep(rng.uniform(0.0, 0.5))
        kill_group(proc)
        proc.communicate()
        for dst in outputs(out):
            if output_ok(dst, FFRAMES, FSIZE):
                row.fail(f"invalid output {dst.name} after kill")
    _finish(row, root, out, model, before, clips)
    row.seconds = time.monotonic() - t0
    return row


def fault_signal(base: Path, model: Path, sig: int, code: int, jobs: int, steps: int = 100) -> Row:
    """A signal inside the first file(s). steps=100: chunks take well under a second here; a large
    ``steps`` makes one chunk last ~9 s, as one chunk of a real model on a large frame does."""
    name = f"{signal.Signals(sig).name}-jobs{jobs}" + ("-mid-long-chunk" if steps > 1000 else "")
    row = Row(name, "fault", f"exit {code} < 5 s")
    root, out = base / "in", base / "out"
    clips = _clips(root, 4 if steps <= 1000 else 1, frames=FFRAMES if steps <= 1000 else 8)
    before = hash_tree(root)
    t0 = time.monotonic()
    proc = start_gvr("upscale", root, out, "--model", model, "--steps", steps, "--jobs", jobs, "--progress-interval", "0")
    _wait_for_line(proc, "start:", jobs)
    time.sleep(0.3 if steps <= 1000 else 1.0)
    ts = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except Exception:
        kill_group(proc)
        _, err = proc.communicate()
    took = time.monotonic() - ts
    if proc.returncode != code or took > 5 or "Traceback" in err:
        row.unclear += 1
        row.fail(f"exit {proc.returncode} after {took:.1f} s")
    else:
        row.clear += 1
    if leftovers(out):
        row.fail(f"partials left after {signal.Signals(sig).name}: {leftovers(out)}")
    _finish(row, root, out, model, before, clips)
    row.seconds = time.monotonic() - t0
    return row


def fault_fsize(base: Path, model: Path) -> Row:
    row = Row("write-failure-rlimit-fsize", "fault", "that file fails")
    root, out = base / "in", base / "out"
    small = [write_video(root / f"{c}-small.mp4", frames=2, size=(32, 24)) for c in "ac"]
    big = write_video(root / "b-big.mp4", frames=12, size=(160, 128))
    before = hash_tree(root)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    run = gvr("upscale", root, out, "--model", model, "--codec", "ffv1", "--json", timeout=120, preexec_fn=limit)
    row.seconds = run.seconds
    if run.returncode == 1 and not clear_error_for(run, big) and not run.has_traceback():
        row.clear += 1
        row.note = next(x for x in run.error_lines() if str(big) in x).split(": ", 2)[-1][:60]
    else:
        row.unclear += 1
        row.fail(f"exit {run.returncode}: {clear_error_for(run, big)[:80]}")
    if any(p.stem == "b-big" for p in outputs(out)):
        row.fail("a partial write was published")
    _judge_outputs(row, run, small)
    row.modified = _modified(before, hash_tree(root))
    row.left = len(leftovers(out))
    return row


def fault_hang(base: Path, model: Path, where: str) -> Row:
    row = Row(f"hang-in-{where}-watchdog", "fault", "stalled file fails")
    root, out = base / "in", base / "out"
    hang = write_video(root / "hang.mp4", frames=4)
    ok = write_video(root / "ok.mp4", frames=4)
    before = hash_tree(root)
    prefix = HANG_IN_DECODE if where == "decode" else HANG_IN_PROBE
    run = gvr("upscale", root, out, "--model", model, "--stall-timeout", "5", "--json", prefix=prefix, timeout=40)
    row.seconds = run.seconds
    if not run.timed_out and run.returncode == 1 and not clear_error_for(run, hang, "stall"):
        row.clear += 1
    else:
        row.unclear += 1
        row.fail("the batch hung (killed after 30 s)" if run.timed_out else f"exit {run.returncode}")
    _judge_outputs(row, run, [ok])
    row.modified = _modified(before, hash_tree(root))
    row.left = len(leftovers(out))
    return row


def fault_workers(base: Path, model: Path, workers: int) -> Row:
    row = Row(f"{workers}-workers-2-kills", "fault", "each file once")
    rng = random.Random(workers)
    root, out = base / "in", base / "out"
    clips = [write_video(root / f"d{i % 3}" / f"clip{i}.mp4", frames=12, size=FSIZE) for i in range(8)]
    before = hash_tree(root)
    args = ["--json", "--steps", "40", "--progress-interval", "0"]
    t0 = time.monotonic()
    events: list[dict] = []
    procs = [start_gvr("upscale", root, out, "--model", model, *args) for _ in range(workers)]
    for _ in range(2):
        victim = rng.choice([p for p in procs if p.poll() is None] or procs)
        _wait_for_line(victim, '"file_start"', 1, events)
        time.sleep(rng.uniform(0.05, 0.4))
        kill_group(victim)
        procs.append(start_gvr("upscale", root, out, "--model", model, *args))
    for p in procs:
        events += parse_events(p.communicate(timeout=300)[0])
    done = Counter(e["source"] for e in events if e.get("event") == "file" and e["status"] == "done")
    twice = [Path(s).name for s, n in done.items() if n > 1]
    if twice:
        row.fail(f"done twice: {twice}")
    _finish(row, root, out, model, before, clips)
    row.seconds = time.monotonic() - t0
    return row


def fault_stale_lock(base: Path, model: Path, owner: str) -> Row:
    from gvrcli.farm.claims import ClaimBoard

    row = Row(f"stale-lock-{owner}", "fault", "recovered" if owner != "remote-alive" else "respected")
    root, out = base / "in", base / "out"
    a, b = write_video(root / "a.mp4", frames=2), write_video(root / "b.mp4", frames=2)
    age = 600 if owner == "remote-silent" else 0
    lock = ClaimBoard(out).lock_path(out / "a.mp4")
    lock.parent.mkdir(parents=True)
    pid = 2**22 - 7 if owner == "dead-local" else 4242
    host = socket.gethostname() if owner == "dead-local" else "render-node-17"
    lock.write_text(json.dumps({"pid": pid, "host": host, "token": "f" * 32, "output": str(out / "a.mp4")}))
    os.utime(lock, (time.time() - age, time.time() - age))
    before = hash_tree(root)
    run = gvr("upscale", root, out, "--model", model, "--json", timeout=60)
    row.seconds = run.seconds
    _judge_outputs(row, run, [a, b] if owner != "remote-alive" else [b])
    if owner == "remote-alive" and (out / "a.mp4").exists():
        row.fail("processed a file a live worker holds")
    row.modified = _modified(before, hash_tree(root))
    # The live worker's lock (and its folder) are that worker's, not leftovers of this run.
    row.left = len([p for p in leftovers(out) if owner != "remote-alive" or not p.startswith(".gvr-locks")])
    return row


def fault_cases(base: Path, model: Path) -> list[Row]:
    rows = [fault_kill9(base / "kill9", model)]
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        for jobs in (1, 2):
            rows.append(fault_signal(base / f"sig{sig}-{jobs}", model, sig, code, jobs))
    rows.append(fault_signal(base / "sig-long", model, signal.SIGTERM, 143, 1, steps=1500))
    rows.append(fault_fsize(base / "fsize", model))
    # Not "hang-...": the probe wrapper blocks on any path containing "hang", which would stall ok.mp4 too.
    rows += [fault_hang(base / f"stall-{w}", model, w) for w in ("decode", "probe")]
    rows += [fault_workers(base / f"workers{n}", model, n) for n in (2, 4)]
    # A live worker's lock: hostile case "live-lock-of-another-host" (waits for it, then exit 0).
    rows += [fault_stale_lock(base / f"lock-{o}", model, o) for o in ("dead-local", "remote-silent")]
    return rows


# ---------------------------------------------------------------------------------------------
# Hostile input (issue #15) and the export round trip
# ---------------------------------------------------------------------------------------------


def hostile_cases(base: Path, model: Path) -> list[Row]:
    rows = []
    for i, case in enumerate(HOSTILE + SURFACES):
        row = Row(case.name, "hostile", case.expect)
        d = base / f"h{i:02d}"
        d.mkdir(parents=True)
        t0 = time.monotonic()
        try:
            problems = case.run(d, model)
        except Exception as e:  # the case's own set-up failing on this code: count it, go on
            problems = [f"case raised {type(e).__name__}: {str(e)[:160]}"]
        row.seconds = time.monotonic() - t0
        if problems and problems[0].startswith("SKIP: "):  # a scene this machine cannot set up (a tmpfs mount)
            row.note, problems = problems[0], []
        for p in problems:
            row.fail(p)
        row.modified = sum(p.startswith("outside OUTPUT_DIR or an input changed") for p in problems)
        row.clear, row.unclear = (1, 0) if not problems else (0, 1)
        rows.append(row)
    return rows


def export_cases(base: Path) -> list[Row]:
    """``gvr export`` for each target and OpenVINO source (a small network), then ``gvr upscale`` on
    what it wrote; and ``gvr export`` on an install without torch."""
    import json as _json

    config = base / "small.json"
    base.mkdir(parents=True, exist_ok=True)
    config.write_text(_json.dumps({"depth": 2, "dim": 32, "heads": 2, "window": [3, 4], "temporal_unit": 3}))
    clip = write_video(base / "in" / "clip.mp4", frames=3, size=(40, 24))
    rows = []
    for name, args in (
        ("export-openvino-default-then-upscale", ["--target", "openvino", "--out", base / "ov"]),
        ("export-openvino-from-onnx-then-upscale", ["--target", "openvino", "--ov-source", "onnx", "--out", base / "ov-onnx"]),
        ("export-onnx-then-upscale", ["--target", "onnx", "--out", base / "m.onnx"]),
    ):
        row = Row(name, "export", "exit 0, 1 output")
        t0 = time.monotonic()
        made = gvr("export", "--config", config, *args, timeout=600)
        target = args[-1]
        model = target if target.suffix == ".onnx" else next((p for p in target.glob("*.xml") if ".condition." not in p.name), target)
        if made.returncode != 0:
            row.fail(f"export exit {made.returncode}: {made.stderr.strip()[-160:]}")
        else:
            run = gvr("upscale", clip.parent, base / f"out-{name}", "--model", model, "--json", timeout=300)
            if run.returncode != 0:
                row.fail(f"upscale exit {run.returncode}: {run.stderr.strip()[-200:]}")
            _judge_outputs(row, run, [clip])
        row.seconds = time.monotonic() - t0
        row.clear, row.unclear = (1, 0) if row.ok else (0, 1)
        rows.append(row)
    row = Row("export-without-the-extra", "export", "exit 2, one line")
    no_torch = [sys.executable, "-c", "import sys; sys.modules['torch'] = None\nfrom gvrcli.cli import main\nsys.argv[0] = 'gvr'\nmain()"]
    run = gvr("export", "--target", "onnx", "--out", base / "x.onnx", prefix=no_torch, timeout=120)
    row.seconds = run.seconds
    why = _one_line_refusal(run, 2) or ("" if "pip install" in run.stderr else "does not say what to install")
    row.clear, row.unclear = (0, 1) if why else (1, 0)
    if why:
        row.fail(why)
    rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    cols = ["case", "group", "expect", "result", "clear", "unclear", "valid", "lost", "modified", "left", "s"]
    body = [
        [r.case, r.group, r.expect, "ok" if r.ok else "FAIL", r.clear, r.unclear, r.valid, r.lost, r.modified, r.left, f"{r.seconds:.1f}"]
        for r in rows
    ]
    total = ["TOTAL", f"{len(rows)} cases", "", f"{sum(not r.ok for r in rows)} FAIL"] + [
        sum(getattr(r, k) for r in rows) for k in ("clear", "unclear", "valid", "lost", "modified", "left")
    ] + [f"{sum(r.seconds for r in rows):.0f}"]
    widths = [max(len(str(x[i])) for x in [cols, *body, total]) for i in range(len(cols))]

    def line(values):
        return "  ".join(str(v).ljust(w) if i < 4 else str(v).rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    print(line(cols))
    print("  ".join("-" * w for w in widths))
    for values in body:
        print(line(values))
    print("  ".join("-" * w for w in widths))
    print(line(total))
    notes = [(r.case, r.note) for r in rows if r.note]
    if notes:
        print("\nnotes:")
        for case, note in notes:
            print(f"  {case}: {note if len(note) < 240 else note[:237] + '...'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model to run (default: the fake bilinear ONNX model)")
    parser.add_argument("--only", choices=["inputs", "models", "options", "faults", "hostile", "export"], action="append")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines instead of a table")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    a = parser.parse_args()
    groups = a.only or ["inputs", "models", "options", "faults", "hostile", "export"]
    base = Path(tempfile.mkdtemp(prefix="gvr-reliability-"))
    t0 = time.monotonic()
    try:
        model = a.model or build_fake_onnx(base / "model" / "fake-x2.onnx")
        rows: list[Row] = []
        if "inputs" in groups:
            rows += [input_case(c, base / "inputs" / f"{i:02d}", model) for i, c in enumerate(ALL)]
        if "models" in groups:
            rows += model_cases(base / "models", model)
        if "options" in groups:
            rows += option_cases(base / "options", model)
        if "faults" in groups:
            rows += fault_cases(base / "faults", model)
        if "hostile" in groups:
            rows += hostile_cases(base / "hostile", model)
        if "export" in groups:
            rows += export_cases(base / "export")
    finally:
        if not a.keep:
            try:
                shutil.rmtree(base, ignore_errors=True)
            except RecursionError:  # a case's tree deeper than the interpreter's stack
                print(f"scratch folder {base} is too deep for shutil.rmtree; remove it by hand", file=sys.stderr)
        else:
            print(f"scratch kept in {base}", file=sys.stderr)
    if a.json:
        for r in rows:
            print(json.dumps(asdict(r)))
    else:
        print_table(rows)
        print(f"\n{len(rows)} cases in {time.monotonic() - t0:.0f} s; outputs lost "
              f"{sum(r.lost for r in rows)} (must be 0), inputs modified {sum(r.modified for r in rows)} (must be 0)")
    return 1 if any(r.lost or r.modified for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
