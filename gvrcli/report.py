"""What a run did: one ``FileResult`` per input and the ``BatchReport`` that sums them up.

The library returns these; the CLI prints them (a table, plain lines or JSON) and maps them to
the exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from gvrcli.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass
class FileResult:
    source: Path
    output: Path | None
    status: str  # done | skipped | failed
    frames: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0  # time inside the model's graphs
    reason: str = ""  # why skipped/failed: one line naming the file and the cause
    warnings: list[str] = field(default_factory=list)
    color_fix: str = ""  # the colour fix applied to a done output (gvrcli.inference.colorfix)
    extra: dict = field(default_factory=dict)  # the command's own facts (degrade: sampled parameters; eval: metrics)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        d["source"], d["output"] = str(self.source), (str(self.output) if self.output else None)
        d["fps"] = round(self.fps, 3)
        d["seconds"], d["model_seconds"] = round(self.seconds, 3), round(self.model_seconds, 3)
        return d


@dataclass
class BatchReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    model: str = ""
    backend: str = ""
    precision: str = ""
    color_fix: str = ""
    fatal: str = ""  # a batch-wide error that stopped the run (model, usage, retryable fault)
    fatal_exit: int = 0
    interrupted: int = 0  # the signal number that stopped the run, 0 if none
    extra: dict = field(default_factory=dict)  # the command's own totals, added to the summary
    model_facts: dict = field(default_factory=dict)  # what the model is (upscale: untrained, model_note), in plan and summary

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def frames(self) -> int:
        return sum(f.frames for f in self.files if f.status == DONE)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + self.interrupted
        if self.fatal:
            return self.fatal_exit or EXIT_USAGE
        return EXIT_SOME_FAILED if self.count(FAILED) else EXIT_OK

    def summary(self) -> dict:
        return {
            "event": "summary",
            "done": self.count(DONE),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 3),
            "model": self.model,
            "backend": self.backend,
            "precision": self.precision,
            "color_fix": self.color_fix,
            "exit_code": self.exit_code,
            "error": self.fatal or None,
            "interrupted": bool(self.interrupted),
            **self.model_facts,
            **self.extra,
        }

