"""One ``gvr: error:`` line, whichever command refuses (``gvrbase.errors.error_line``): ``gvr export``'s
events and the runtime's commands write the same line and the same JSON summary for one message."""

from __future__ import annotations

import io
import json

import pytest
import typer

from gvrbase.errors import error_line, one_line

NASTY = "cannot write out/a\nb\r.mp4: Permission denied"  # a file name may hold a newline or a CR


def test_newlines_and_carriage_returns_are_escaped_not_dropped():
    assert one_line("a\nb\rc") == "a\\nb\\rc"
    assert error_line(NASTY) == "gvr: error: cannot write out/a\\nb\\r.mp4: Permission denied"


def test_the_exporter_and_the_runtime_refuse_in_the_same_words(capsys):
    from gvrcli.errors import exit_with_error
    from gvrcli.export_command import ExportEvents

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(typer.Exit) as exported:
        ExportEvents(True, 0, out=out, err=err).fail(NASTY, 2)
    with pytest.raises(SystemExit) as ran:
        exit_with_error(NASTY, 2, as_json=True)
    runtime = capsys.readouterr()
    assert exported.value.exit_code == ran.value.code == 2
    assert err.getvalue() == runtime.err == error_line(NASTY) + "\n"
    assert json.loads(out.getvalue()) == json.loads(runtime.out) == {"event": "summary", "error": NASTY, "exit_code": 2}
