"""Which network to export: a preset, a JSON config file, or a checkpoint (config from its metadata).

Every refusal is an ``ExportError`` with one line naming what is wrong, raised before any export work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Config fields that change only how the network runs, not its weights: a checkpoint may be
# exported with them overridden.
RUNTIME_FIELDS = ("attention", "steps", "noise_aug")


@dataclass
class ModelSource:
    model: object  # models.SimpleGVR, eval mode
    name: str  # "tiny", a config file's stem or a checkpoint's stem: names default outputs


def resolve_config(config: str | None) -> tuple[str, dict]:
    """``config`` = preset name, path to a JSON file, or None (the built-in default ``tiny``).

    A JSON config is an object of GVRConfig fields, optionally with ``"preset"`` naming the preset
    it overrides (default ``tiny``). Returns (name, GVRConfig keyword arguments).
    """
    from models.simplegvr import GVRConfig, PRESETS

    from export.errors import ExportError

    if config is None:
        return "tiny", dict(PRESETS["tiny"])
    if config in PRESETS:
        return config, dict(PRESETS[config])
    path = Path(config)
    if not path.is_file():
        raise ExportError(f"unknown config {config!r}: not a preset ({', '.join(PRESETS)}) nor a JSON file")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"config {path}: not readable JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ExportError(f"config {path}: expected a JSON object of model settings")
    base = raw.pop("preset", "tiny")
    if base not in PRESETS:
        raise ExportError(f"config {path}: unknown preset {base!r} (choose from {', '.join(PRESETS)})")
    kwargs = {**PRESETS[base], **raw}
    try:
        GVRConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ExportError(f"config {path}: {e}") from None
    return path.stem, kwargs


def load_source(config: str | None = None, weights: str | None = None, scale: int | None = None) -> ModelSource:
    """Build the network to export. Without ``weights``: the config's untrained network (the built-in
    default). With ``weights``: the checkpoint, its config from its metadata unless ``config`` is given,
    in which case both must describe the same architecture."""
    import models
    from models.checkpoint import read_config
    from models.simplegvr import GVRConfig
    from models.tensorfile import CheckpointError

    from export.errors import ExportError

    if scale is not None and scale not in (2, 4):
        raise ExportError(f"scale must be 2 or 4, got {scale}")
    if weights is None:
        name, kwargs = resolve_config(config)
        if scale is not None:
            kwargs["scale"] = scale
        try:
            return ModelSource(models.build_model(**_preset_free(kwargs)), name)
        except (TypeError, ValueError) as e:
            raise ExportError(f"config {name}: {e}") from None

    path = Path(weights)
    try:
        stored = read_config(path)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    overrides = {}
    if config is not None:
        _, kwargs = resolve_config(config)
        wanted = GVRConfig(**kwargs).to_dict()
        have = stored.to_dict()
        differ = [k for k in wanted if k not in RUNTIME_FIELDS and _norm(wanted[k]) != _norm(have.get(k))]
        if differ:
            diffs = ", ".join(f"{k}={have.get(k)!r} (config says {wanted[k]!r})" for k in differ[:4])
            raise ExportError(f"{path}: checkpoint is a different architecture than --config {config}: {diffs}")
        overrides = {k: wanted[k] for k in RUNTIME_FIELDS}
    if scale is not None and scale != stored.scale:
        raise ExportError(f"{path}: checkpoint was built for scale {stored.scale}, not --scale {scale}")
    try:
        model = models.load_model(path, **overrides)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    return ModelSource(model, path.stem)


def _preset_free(kwargs: dict) -> dict:
    # build_model takes a preset name plus overrides; a full field dict overrides everything of "tiny".
    return {"preset": "tiny", **kwargs}


def _norm(v):
    return list(v) if isinstance(v, tuple) else v
