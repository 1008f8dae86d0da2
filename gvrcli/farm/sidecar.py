"""``--sidecar``: ``OUTPUT.gvr.json`` beside each output, saying how it was made.

Provenance a farm can audit months later: the source and its SHA-256, the model file and its
weights' SHA-256, backend, device, precision, sampler settings, gvr version, frames, shots,
timings and warnings. The sidecar is written like the output (a partial, then a rename) and
published just before it, so an output never exists without its sidecar: a crash between the two
leaves a sidecar whose output is missing, which the rerun redoes, replacing the sidecar. A rerun
that skips an output keeps its sidecar; an output redone without ``--sidecar`` loses the stale one
(it would describe the previous output).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from models import __version__

from gvrbase import atomic
from gvrcli.report import FileResult

SUFFIX = ".gvr.json"


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def record(result: FileResult, provenance: dict) -> dict:
    """The sidecar's content: the run's provenance plus this file's facts."""
    facts = result.to_dict()
    return {
        "gvr_version": __version__,
        "source": str(Path(result.source).resolve()),
        # A frame range's record carries the plan's fingerprint instead: no task reads a film whole for it.
        "source_sha256": provenance["source_sha256"] if "source_sha256" in provenance else file_sha256(result.source),
        "output": str(result.output),
        **provenance,
        **{k: facts[k] for k in ("frames", "seconds", "model_seconds", "fps", "warnings", "color_fix") if k in facts},
        **result.extra,
    }


def write(output: Path, content: dict, token: str) -> None:
    """Publish ``content`` as ``output``'s sidecar (call while holding ``output``'s claim)."""
    path = sidecar_path(output)
    partial = atomic.partial_path(path, token)
    try:
        partial.write_text(json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        atomic.publish(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_stale(output: Path) -> None:
    """An output redone without ``--sidecar``: its old sidecar describes another file."""
    sidecar_path(output).unlink(missing_ok=True)
    atomic.remove_partials(sidecar_path(output))
