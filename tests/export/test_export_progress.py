"""``gvr export`` says what it is doing: a line per stage, a heartbeat while a stage runs, and with
``--json`` the events ``gvr upscale`` prints (start, progress, summary), exit codes unchanged. The
exporter reports through ``on_stage`` (``export.progress``) and never imports the CLI."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time

import pytest

from tests.reliability.media_cases import REPO

SMALL_JSON = {"depth": 1, "dim": 32, "heads": 2}  # one block


def _gvr(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gvrcli", *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_gvr_export_json_has_a_progress_event_per_stage_and_a_summary(tmp_path):
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL_JSON))
    out = tmp_path / "m.onnx"
    # Static: a quarter of a dynamic trace's time, and the same stages.
    run = _gvr("export", "--target", "onnx", "--config", config, "--static", "--shape", "3,12,16", "--out", out, "--json", "--progress-interval", "0.5")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]  # stdout holds nothing but JSON
    assert events[0]["event"] == "start" and events[0]["target"] == "onnx" and events[-1]["event"] == "summary"
    progress = [e for e in events if e["event"] == "progress"]
    stages = [e["stage"] for e in progress if not e["heartbeat"]]
    assert stages == ["tracing condition graph", "writing m.condition.onnx", "tracing step graph", "writing m.onnx", "done"]
    assert any(e["heartbeat"] and e["stage"] == "tracing step graph" for e in progress), "a trace takes seconds: heartbeats"
    elapsed = [e["elapsed_seconds"] for e in progress]
    assert elapsed == sorted(elapsed) and progress[-1]["percent"] == 100.0
    summary = events[-1]
    assert summary["exit_code"] == 0 and summary["error"] is None and summary["path"] == str(out) and out.is_file()
    assert summary["untrained"] is True and "untrained" in summary["model_note"], "a config's fresh network is untrained"

    again = _gvr("export", "--target", "onnx", "--config", config, "--static", "--shape", "3,12,16", "--out", out, "--json")  # exists: exit 2
    assert again.returncode == 2
    last = json.loads(again.stdout.splitlines()[-1])
    assert last["event"] == "summary" and last["exit_code"] == 2 and "already exists" in last["error"]
    assert again.stderr.strip().splitlines()[-1].startswith("gvr: error:")


def test_plain_stage_lines_and_heartbeat():
    from gvrcli.export_command import ExportEvents

    out, err = io.StringIO(), io.StringIO()
    events = ExportEvents(False, 0, out=out, err=err)  # heartbeat every 0.1 s
    events.start(target="onnx", out="m.onnx", precision="fp32", verify=True, bundle=False)
    time.sleep(0.25)
    assert out.getvalue() == err.getvalue() == "", "nothing before the first stage: a refusal stays one line"
    events("tracing step graph")
    time.sleep(0.35)
    events("verifying", 3, 8)
    events.finish({}, ["onnx: m.onnx (summary)"])
    lines = out.getvalue().splitlines()
    assert err.getvalue() == "gvr export: onnx -> m.onnx (fp32, verify)\n"
    assert re.fullmatch(r"stage: tracing step graph \(0:0\d\)", lines[0])  # elapsed since start, m:ss
    assert any(re.fullmatch(r"stage: verifying 3/8 \(0:0\d\)", line) for line in lines)
    assert any(re.fullmatch(r"status: tracing step graph; 0:0\d elapsed", line) for line in lines)
    assert lines[-1] == "onnx: m.onnx (summary)"


def test_the_exporter_records_whether_the_network_is_untrained():
    import models
    from models.checkpoint import init_random_

    assert models.build_model("tiny").manifest().untrained is True  # zero head: the built-in default
    assert init_random_(models.build_model("tiny"), seed=0).manifest().untrained is False  # a trained-like checkpoint


@pytest.mark.parametrize("name", ["tracing step graph", "verifying"])
def test_prefixed_stages_name_the_verification(name):
    from export.progress import prefixed

    heard = []
    prefixed(lambda *a: heard.append(a), "verify: ")(name, 1, 2)
    assert heard == [(f"verify: {name}", 1, 2)]


def test_verification_counts_its_checks():
    """``verifying N/M``: M = graphs' backends x shapes, and every check moves N by one."""
    import models
    from export.backends import TorchBackend
    from export.graphs import graph_module
    from export.spec import VERIFY_SHAPES
    from export.verify import compare

    model = models.build_model("tiny", depth=1, dim=32, heads=2).eval()
    graphs = {role: [TorchBackend(graph_module(model, role), name=f"torch-{i}") for i in range(n)] for role, n in (("step", 2), ("condition", 1))}
    heard = []
    report = compare(model, graphs, VERIFY_SHAPES, on_stage=lambda *a: heard.append(a))
    total = 3 * len(VERIFY_SHAPES)
    assert heard == [("verifying", n, total) for n in range(total + 1)] and len(report.checks) == total and report.ok
