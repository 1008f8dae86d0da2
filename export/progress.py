"""How a long export tells its caller what it is doing, without knowing who listens.

A dynamic trace takes minutes and a verified bundle ten; ``gvr export`` shows each stage, a
heartbeat and JSON events (the CLI's export command). The exporter must not import the CLI
(imports point down), so every export function takes an ``on_stage`` callable instead:

    on_stage(name, done=0, total=0)

called when the stage ``name`` starts (``"tracing step graph"``, ``"writing"``); a stage that
counts its work calls again as it goes, ``done`` of ``total`` finished (``"verifying"``, 3, 8).
"""

from __future__ import annotations

from typing import Protocol


class OnStage(Protocol):
    def __call__(self, name: str, done: int = 0, total: int = 0) -> None: ...


def silent(name: str, done: int = 0, total: int = 0) -> None:
    """The default: nobody listens."""


def prefixed(on_stage: OnStage, prefix: str) -> OnStage:
    """``on_stage`` with ``prefix`` before every stage name: a verification's own export reports
    ``verify: tracing step graph``, not a second ``tracing step graph``."""

    def report(name: str, done: int = 0, total: int = 0) -> None:
        on_stage(f"{prefix}{name}", done, total)

    return report
