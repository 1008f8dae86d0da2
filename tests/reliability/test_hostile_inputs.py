"""Hostile input (issue #15): no input overwritten, nothing written or deleted outside OUTPUT_DIR,
no traceback, no hang, exit codes as the README's table says, and a JSON summary every time.

The cases are in ``hostile_cases`` (shared with ``benchmarks/reliability_report.py``); each
returns what went wrong, so a failure names every broken promise at once.
"""

from __future__ import annotations

import pytest
from hostile_cases import HOSTILE


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in HOSTILE]
)
def test_hostile_case(tmp_path, fake_model, case):
    problems = case.run(tmp_path, fake_model)
    assert not problems, f"{case.name} (issue item {case.item}, expect {case.expect}): " + "; ".join(problems)
