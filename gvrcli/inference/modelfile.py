"""The model artefact: find it (or the built-in default), check it, read its manifest.

Everything here runs before any video is touched, so a missing, truncated or foreign model, or
one whose manifest is missing or inconsistent, stops the run with exit 2 and one clear line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.manifest import BUNDLE_MAIN, MANIFEST_KEY, STEP, ManifestError, ModelManifest, graph_sha256

from gvrbase import atomic
from gvrbase.errors import first_line
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
    # Staged under its final name, so the condition graph beside it gets its final name too (the
    # manifest names it); both land together. Another process caching the same file may win: same bytes.
    with atomic.staged(target.parent, replace=True) as stage:
        cmd = [sys.executable, "-m", "gvrcli", "export", "--target", "onnx", "--scale", str(scale), "--out", str(stage / name)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not (stage / name).is_file():
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelError(
                f"cannot export the built-in default model ({last[0]}); "
                "install the export extra (pip install -e '.[export]') or pass --model FILE"
            )
    say(f"cached the built-in default model at {target}")
    return target


def resolve_model_path(path: Path) -> Path:
    """``--model`` as given, or for a folder the step graph inside it: a latent-cascade bundle's
    ``denoiser.onnx`` / ``denoiser.xml`` (``gvr export --vae``), else the one graph in the folder
    that carries a gvr manifest, whatever it is named (``gvr export --target openvino --out ir/``).
    Several such graphs, or none, is a ModelError (exit 2) naming them or the folder."""
    path = Path(path)
    if not path.is_dir():
        return path
    bundle = [path / f"{BUNDLE_MAIN}{suffix}" for suffix in (".onnx", ".xml") if (path / f"{BUNDLE_MAIN}{suffix}").is_file()]
    if len(bundle) > 1:
        raise ModelError(f"model {path}: a bundle folder holds one {BUNDLE_MAIN}.onnx or {BUNDLE_MAIN}.xml (both a .onnx and a .xml found)")
    if bundle:
        return bundle[0]
    steps = step_graphs_in(path)
    if not steps:
        raise ModelError(f"model {path}: no gvr model in this folder (no .onnx or OpenVINO .xml carrying a gvr manifest); give the folder gvr export wrote, or the file")
    if len(steps) > 1:
        names = ", ".join(p.name for p in steps)
        raise ModelError(f"model {path}: the folder holds {len(steps)} gvr models ({names}); name one with --model {path / steps[0].name}")
    return steps[0]


MAX_FOLDER_GRAPHS = 64  # graph files a --model folder may hold: an export writes at most a few


def step_graphs_in(folder: Path) -> list[Path]:
    """The step graphs in ``folder`` (not its subfolders): the .onnx / .xml files whose metadata
    is a gvr manifest and that no other graph's manifest names as its companion. Files that are
    not readable graphs are not models; this never decides by file name."""
    graphs = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".onnx", ".xml") and p.is_file())
    if len(graphs) > MAX_FOLDER_GRAPHS:
        raise ModelError(f"model {folder}: {len(graphs)} graph files in the folder (at most {MAX_FOLDER_GRAPHS}); give the model's file")
    texts = {}
    for graph in graphs:
        try:
            texts[graph] = read_graph_metadata(graph)
        except ModelError:
            continue  # not a readable graph: not a model
    companions = set()
    for graph, text in texts.items():
        if text is None:
            continue
        try:  # a manifest that does not parse is still a model's: read_manifest says what is wrong
            companions |= {entry["file"] for entry in ModelManifest.from_json(text, source=f"model {graph}").graphs.values()}
        except (ManifestError, TypeError, ValueError, KeyError, AttributeError, RecursionError):
            continue
    return [g for g, text in texts.items() if text is not None and g.name not in companions]


def read_graph_metadata(path: Path) -> str | None:
    """The gvr manifest text of one graph file (.onnx or OpenVINO .xml), None if it has none."""
    return read_graph(path)[0]


def read_graph(path: Path) -> tuple[str | None, tuple[list[str], list[str]]]:
    """(manifest text or None, (input names, output names)) of one graph file, as the file says."""
    return _onnx_manifest(path) if Path(path).suffix.lower() == ".onnx" else _openvino_manifest(path)


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
            text, io = _openvino_manifest(path)
        else:
            raise ModelError(f"model {path}: not an .onnx file or OpenVINO .xml")
        manifest = ModelManifest.from_json(text, source=f"model {path}")
    except ManifestError as e:
        raise ModelError(str(e)) from None
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:  # a forged manifest no check foresaw
        raise ModelError(f"model {path}: unreadable gvr manifest ({type(e).__name__}: {str(e)[:120]})") from None
    _check_io(path, manifest, io)
    return manifest


def graph_paths(path: Path, manifest: ModelManifest) -> dict[str, Path]:
    """role -> file of every graph of the model at ``path`` (the step graph itself and the companions
    its manifest names). A companion must be a file inside the model's folder
    (``check_inside_model_folder``) whose SHA-256 matches the manifest's; anything else is a
    ModelError (exit 2) naming it."""
    path = Path(path)
    paths = {STEP: path}
    for role, entry in manifest.graphs.items():
        name = entry["file"]
        target = check_inside_model_folder(path, name, f"its {role} graph")
        if target.suffix.lower() == ".xml":
            check_inside_model_folder(path, str(Path(name).with_suffix(".bin")), f"its {role} graph's weights")
        if graph_sha256(target) != entry["sha256"]:
            raise ModelError(f"model {path}: its {role} graph {name} does not match the manifest's SHA-256 (altered, or from another export)")
        if target.suffix.lower() == ".onnx":
            _onnx_manifest(target)  # readable, and its external data stays inside the folder too
        paths[role] = target
    return paths


def _onnx_manifest(path: Path) -> tuple[str | None, tuple[list[str], list[str]]]:
    from gvrcli.inference.onnx_wire import WireError, read_onnx_summary

    try:
        summary = read_onnx_summary(path)
    except (WireError, OSError, ValueError) as e:  # ValueError: also a name that is not UTF-8
        raise ModelError(f"model {path}: not a readable ONNX file ({type(e).__name__}: {first_line(e)})") from None
    if not summary.nodes:
        raise ModelError(f"model {path}: not a readable ONNX file (empty graph)")
    _check_external_data(path, summary.tensors)
    return summary.metadata.get(MANIFEST_KEY), (summary.inputs, summary.outputs)


def _check_io(path: Path, manifest: ModelManifest, io) -> None:
    """The step graph's inputs and outputs must be the ones its manifest declares."""
    names_in, names_out = io
    if set(manifest.inputs) - set(names_in) or set(manifest.outputs) - set(names_out):
        raise ModelError(
            f"model {path}: graph inputs {names_in} / outputs {names_out} are not the gvr step graph's "
            f"{list(manifest.inputs)} / {list(manifest.outputs)} (a model from an older gvr export: export it again)"
        )


def check_inside_model_folder(model: Path, location: str, what: str) -> Path:
    """The one rule for files a model pulls in (ONNX external data, OpenVINO's ``.bin``): a
    relative name whose real path (links resolved) is a regular file inside the model's own
    folder. Returns that path; ModelError otherwise."""
    root = Path(os.path.realpath(Path(model).parent))
    if not isinstance(location, str) or not location or "\0" in location:
        raise ModelError(f"model {model}: {what} {location!r} is not a valid file name")
    if os.path.isabs(location):
        raise ModelError(f"model {model}: {what} {location!r} points outside the model's folder")
    target = Path(os.path.realpath(root / location))
    if root not in target.parents:
        raise ModelError(f"model {model}: {what} {location!r} points outside the model's folder")
    if not target.is_file():
        raise ModelError(f"model {model}: {what} file {location!r} is missing")
    return target


def _check_external_data(path: Path, tensors) -> None:
    """Refuse external-data entries that are malformed or escape the model's folder (a hostile
    model reading /etc/...), in every tensor of the model (``onnx_wire``: initializers, sparse
    ones, attributes, subgraphs), before any runtime sees it."""
    for tensor in tensors:
        if not tensor.external and not tensor.external_data:
            continue
        entries = dict(tensor.external_data)
        location = entries.get("location")
        for key in ("offset", "length"):
            value = entries.get(key)
            if value is not None and not (value.isascii() and value.isdigit()):
                raise ModelError(f"model {path}: external data of {tensor.name!r} has a bad {key} {value!r}")
        check_inside_model_folder(path, location, "external data")


def _openvino_manifest(path: Path) -> tuple[str | None, tuple[list[str], list[str]]]:
    from gvrcli.inference.quiet_openvino import import_openvino

    ov = import_openvino()

    if not os.path.lexists(path.with_suffix(".bin")):
        raise ModelError(f"model {path}: the OpenVINO weights {path.with_suffix('.bin').name} are missing")
    check_inside_model_folder(path, path.with_suffix(".bin").name, "OpenVINO weights")
    # Look before handing it to OpenVINO: on a file that is not IR its frontends try one format
    # after another and log to stderr on the way.
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"<net" not in head:
        raise ModelError(f"model {path}: not OpenVINO IR (no <net> element at its start)")
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as e:
        raise ModelError(f"model {path}: not a readable OpenVINO IR ({first_line(e)})") from None
    io = sorted(n for port in model.inputs for n in port.get_names()), sorted(n for port in model.outputs for n in port.get_names())
    if not model.has_rt_info(MANIFEST_KEY):
        return None, io
    value = model.get_rt_info(MANIFEST_KEY)
    return (value.astype(str) if hasattr(value, "astype") else str(value)), io
