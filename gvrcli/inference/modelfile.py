"""The model artefact: find it (or the built-in default), check it, read its manifest.

Everything here runs before any video is touched, so a missing, truncated or foreign model, or
one whose manifest is missing or inconsistent, stops the run with exit 2 and one clear line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.manifest import MANIFEST_KEY, STEP, ManifestError, ModelManifest, graph_sha256

from gvrcli.errors import ModelError

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


def default_model_name(scale: int) -> str:
    return f"gvr-tiny-x{scale}.onnx"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gvr"


def resolve_default_model(scale: int, say=lambda msg: None) -> Path:
    """The built-in default for ``scale``: prebuilt in the package, else exported once into the cache.

    Exporting needs the ``export`` extra (torch); it runs in a child process so this process never
    imports torch.
    """
    name = default_model_name(scale)
    for candidate in (ASSETS_DIR / name, cache_dir() / name):
        if candidate.is_file():
            return candidate
    target = cache_dir() / name
    say(f"built-in default model {name} is not prebuilt: exporting it once into {target.parent}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.partial-{os.getpid()}.onnx")
    cmd = [sys.executable, "-m", "gvrcli", "export", "--target", "onnx", "--scale", str(scale), "--out", str(tmp)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not tmp.is_file():
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelError(
                f"cannot export the built-in default model ({last[0]}); "
                "install the export extra (pip install -e '.[export]') or pass --model FILE"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    say(f"cached the built-in default model at {target}")
    return target


def read_manifest(path: Path) -> ModelManifest:
    """The manifest inside an ONNX file or OpenVINO IR; ModelError if the file cannot serve as a gvr model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".onnx":
            text, io = _onnx_manifest(path)
        elif suffix == ".xml":
            text = _openvino_manifest(path)
        else:
            raise ModelError(f"model {path}: not an .onnx file or OpenVINO .xml")
        manifest = ModelManifest.from_json(text, source=f"model {path}")
    except ManifestError as e:
        raise ModelError(str(e)) from None
    if suffix == ".onnx":
        _check_onnx_io(path, manifest, io)
    return manifest


def graph_paths(path: Path, manifest: ModelManifest) -> dict[str, Path]:
    """role -> file of every graph of the model at ``path`` (the step graph itself and the companions
    its manifest names). A companion must be a file inside the model's folder whose SHA-256 matches
    the manifest's; anything else is a ModelError (exit 2) naming it."""
    path = Path(path)
    root = path.resolve().parent
    paths = {STEP: path}
    for role, entry in manifest.graphs.items():
        name = entry["file"]
        companion = path.parent / name
        target = companion.resolve()
        if target.parent != root:
            raise ModelError(f"model {path}: its {role} graph {name!r} is not a file in the model's folder")
        if not target.is_file() or (target.suffix.lower() == ".xml" and not target.with_suffix(".bin").is_file()):
            raise ModelError(f"model {path}: its {role} graph {name} is missing (copy it along with the model, or re-export)")
        if graph_sha256(target) != entry["sha256"]:
            raise ModelError(f"model {path}: its {role} graph {name} does not match the manifest's SHA-256 (altered, or from another export)")
        if target.suffix.lower() == ".onnx":
            _onnx_manifest(companion)  # readable, and its external data stays inside the folder too
        paths[role] = companion
    return paths


def _onnx_manifest(path: Path) -> str | None:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise ModelError(f"model {path}: not a readable ONNX file ({type(e).__name__})") from None
    if not proto.graph.node:
        raise ModelError(f"model {path}: not a readable ONNX file (empty graph)")
    _check_external_data(path, proto)
    io = [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    return {p.key: p.value for p in proto.metadata_props}.get(MANIFEST_KEY), io


def _check_onnx_io(path: Path, manifest: ModelManifest, io) -> None:
    """The step graph's inputs and outputs must be the ones its manifest declares."""
    names_in, names_out = io
    if set(manifest.inputs) - set(names_in) or set(manifest.outputs) - set(names_out):
        raise ModelError(
            f"model {path}: graph inputs {names_in} / outputs {names_out} are not the gvr step graph's "
            f"{list(manifest.inputs)} / {list(manifest.outputs)}"
        )


def _check_external_data(path: Path, proto) -> None:
    """Refuse external-data locations that escape the model's folder (a hostile model reading /etc/...)."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    root = path.resolve().parent
    for tensor in proto.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (root / location).resolve()
        if os.path.isabs(location) or root not in target.parents:
            raise ModelError(f"model {path}: external data {location!r} points outside the model's folder")
        if not target.is_file():
            raise ModelError(f"model {path}: external data file {location!r} is missing")


def _openvino_manifest(path: Path) -> str | None:
    from gvrcli.inference.quiet_openvino import import_openvino

    ov = import_openvino()

    if not path.with_suffix(".bin").is_file():
        raise ModelError(f"model {path}: the OpenVINO weights {path.with_suffix('.bin').name} are missing")
    # Look before handing it to OpenVINO: on a file that is not IR its frontends try one format
    # after another and log to stderr on the way.
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"<net" not in head:
        raise ModelError(f"model {path}: not OpenVINO IR (no <net> element at its start)")
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unreadable"
        raise ModelError(f"model {path}: not a readable OpenVINO IR ({first})") from None
    if not model.has_rt_info(MANIFEST_KEY):
        return None
    value = model.get_rt_info(MANIFEST_KEY)
    return value.astype(str) if hasattr(value, "astype") else str(value)
