"""The fake gvr model the runtime tests run: hand-built ONNX graphs (condition + step) with the
exported model's inputs, outputs and manifest, whose Euler step lands exactly on the bilinear
upscale (what the untrained default does), so runtime tests need neither torch nor an export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.manifest import MANIFEST_KEY


def fake_manifest(scale: int = 2, temporal_unit: int = 2, steps: int = 2, **extra) -> dict:
    return {
        "config": {"preset": "fake"},
        "scale": scale,
        "latent_channels": 3,
        "patch": 1,
        "window": [4, 4],
        "temporal_unit": temporal_unit,
        "steps": steps,
        "noise_aug": 0.0,
        "prediction": "velocity",
        "attention": "full",
        "codec": "pixel",
        "gvr_version": "test",
        "format_version": 3,
        **extra,
    }


def build_fake_onnx(
    path: Path,
    scale: int = 2,
    manifest: dict | str | None = None,
    with_manifest: bool = True,
    external_location: str | None = None,
    drift: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
) -> Path:
    """A fake two-graph model: ``path`` (the step graph, carrying the manifest) and its condition
    graph ``NAME.condition.onnx`` beside it (named and hashed in the manifest).

    condition: ``cond = bilinear_up(lr)`` to the size of ``hr_grid``; step: ``z_next = z_t + (t_next - t) * (z_t - cond) / t``,
    the Euler update of a velocity under which the sampler lands exactly on the bilinear upscale.
    ``manifest`` may be raw text (to write broken JSON); ``external_location`` stores the step
    graph's ``t_shape`` tensor as ONNX external data at that location (relative to the model's
    folder, may escape it). ``drift`` = (gains, offsets) per channel: the sampler lands on
    ``gain * bilinear + offset`` in pixels instead (a colour cast, per pixel, so tiling stays exact).
    """
    from models.manifest import companion_name, graph_sha256

    path.parent.mkdir(parents=True, exist_ok=True)
    cond_path = path.with_name(companion_name(path.name, "condition"))
    _save(_condition_graph(scale, drift), cond_path)
    step = _step_graph()
    if with_manifest:
        if isinstance(manifest, str):
            text = manifest
        else:
            fields = dict(manifest or fake_manifest(scale=scale))
            fields.setdefault("graphs", {"condition": {"file": cond_path.name, "sha256": graph_sha256(cond_path)}})
            text = json.dumps(fields)
        step.metadata_props.append(onnx.StringStringEntryProto(key=MANIFEST_KEY, value=text))
    if external_location is not None:
        t = next(t for t in step.graph.initializer if t.name == "t_shape")
        raw = np.array([-1, 1, 1, 1, 1], dtype=np.int64).tobytes()
        target = (path.parent / external_location).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        t.ClearField("int64_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external_location), ("offset", "0"), ("length", str(len(raw)))):
            t.external_data.append(onnx.StringStringEntryProto(key=key, value=value))
    _save(step, path)
    return path


def _save(model, path: Path) -> None:
    model.ir_version = 9
    onnx.save(model, str(path))


def _condition_graph(scale: int, drift=None):
    dims_lr, dims_hr = ["B", 3, "T", "h", "w"], ["B", 3, "T", "H", "W"]
    inputs = [
        helper.make_tensor_value_info("lr", TensorProto.FLOAT, dims_lr),
        helper.make_tensor_value_info("lr_noise", TensorProto.FLOAT, dims_lr),
        helper.make_tensor_value_info("noise_aug", TensorProto.FLOAT, ["B"]),
        helper.make_tensor_value_info("hr_grid", TensorProto.FLOAT, ["B", 1, 1, "H", "W"]),
    ]
    output = helper.make_tensor_value_info("cond", TensorProto.FLOAT, dims_hr)
    inits = []
    nodes = [  # sizes = (B, C, T) of lr, (H, W) of hr_grid: the output size rides in hr_grid's shape
        helper.make_node("Shape", ["lr"], ["lr_shape"], end=3),
        helper.make_node("Shape", ["hr_grid"], ["hr_shape"], start=3),
        helper.make_node("Concat", ["lr_shape", "hr_shape"], ["sizes"], axis=0),
        helper.make_node("Resize", ["lr", "", "", "sizes"], ["up" if drift else "cond"], mode="linear", coordinate_transformation_mode="half_pixel"),
    ]
    if drift:  # pixels p = (latent + 1) / 2: gain * p + offset is gain * latent + (gain + 2 * offset - 1)
        gain, offset = np.asarray(drift[0], np.float32), np.asarray(drift[1], np.float32)
        inits += [
            helper.make_tensor("gain", TensorProto.FLOAT, [1, 3, 1, 1, 1], gain),
            helper.make_tensor("shift", TensorProto.FLOAT, [1, 3, 1, 1, 1], gain + 2 * offset - 1),
        ]
        nodes += [helper.make_node("Mul", ["up", "gain"], ["scaled"]), helper.make_node("Add", ["scaled", "shift"], ["cond"])]
    graph = helper.make_graph(nodes, "fake_gvr_condition", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _step_graph():
    dims = ["B", 3, "T", "H", "W"]
    inputs = [
        helper.make_tensor_value_info("z_t", TensorProto.FLOAT, dims),
        helper.make_tensor_value_info("t", TensorProto.FLOAT, ["B"]),
        helper.make_tensor_value_info("t_next", TensorProto.FLOAT, ["B"]),
        helper.make_tensor_value_info("cond", TensorProto.FLOAT, dims),
        helper.make_tensor_value_info("noise_aug", TensorProto.FLOAT, ["B"]),
    ]
    output = helper.make_tensor_value_info("z_next", TensorProto.FLOAT, dims)
    t_shape = helper.make_tensor("t_shape", TensorProto.INT64, [5], [-1, 1, 1, 1, 1])
    nodes = [
        helper.make_node("Sub", ["z_t", "cond"], ["diff"]),
        helper.make_node("Sub", ["t_next", "t"], ["dt"]),
        helper.make_node("Div", ["dt", "t"], ["ratio"]),
        helper.make_node("Reshape", ["ratio", "t_shape"], ["ratio5"]),
        helper.make_node("Mul", ["diff", "ratio5"], ["update"]),
        helper.make_node("Add", ["z_t", "update"], ["z_next"]),
    ]
    graph = helper.make_graph(nodes, "fake_gvr_step", inputs, [output], [t_shape])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def bilinear_up(frames: np.ndarray, scale: int) -> np.ndarray:
    """(T, h, w, C) -> (T, s*h, s*w, C): half-pixel bilinear with edge clamp (ONNX Resize 'linear')."""
    T, h, w, C = frames.shape

    def axis(n):
        x = (np.arange(n * scale) + 0.5) / scale - 0.5
        x = np.clip(x, 0, n - 1)
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (x - i0).astype(np.float32)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = frames[:, y0] * (1 - fy)[None, :, None, None] + frames[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


# ---------------------------------------------------------------------------------------------
# A fake latent-cascade bundle (``gvr export --vae``), for checks made before a model loads
# ---------------------------------------------------------------------------------------------

# (graph role, role, chunk, input, output) of the four VAE graphs (``export.vae.GRAPHS``).
_VAE_GRAPHS = (
    ("vae_encoder_first", "vae_encoder", "first", "pixels", "latents"),
    ("vae_encoder", "vae_encoder", "step", "pixels", "latents"),
    ("vae_decoder_first", "vae_decoder", "first", "latents", "pixels"),
    ("vae_decoder", "vae_decoder", "step", "latents", "pixels"),
)
FAKE_VAE_SHA = "ab" * 32


def fake_vae_manifest(role: str, chunk: str, inp: str, out: str) -> dict:
    """A VAE graph manifest (``models.vae_manifest``) that validates: Wan2.1's latent space, one cache."""
    return {
        "role": role, "chunk": chunk, "codec": "wan2.1", "config": {}, "latent_channels": 16,
        "spatial_factor": 8, "temporal_factor": 4, "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16,
        "input": inp, "output": out, "input_shape": [1, 3, 1, -1, -1], "output_shape": [1, 16, 1, -1, -1],
        "caches": [{"name": "cache0", "channels": 8, "frames": 2, "per_cell": [1, 1]}],
        "weights_sha256": FAKE_VAE_SHA, "format": "gvr-vae", "format_version": 1,
    }


def build_fake_bundle(folder: Path, forge=None) -> Path:
    """A bundle folder whose files pass every check made before the model loads (manifests, names,
    hashes): ``denoiser.onnx`` (the fake step graph, a wan2.1 manifest) and four Identity VAE
    graphs. Enough for ``--dry-run`` and for refusals at planning, probing or manifest reading;
    it cannot upscale. ``forge(graph_role, manifest dict)`` returns the manifest (a dict, or raw
    text) to write for that VAE graph instead: the hashes are recomputed (forged but rehashed)."""
    from models.manifest import graph_sha256

    folder.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for graph_role, role, chunk, inp, out in _VAE_GRAPHS:
        m = fake_vae_manifest(role, chunk, inp, out)
        m = forge(graph_role, m) if forge else m
        names_in = [inp, *(["cache0"] if chunk == "step" else [])]
        model = _identity_graph(names_in, [out, "cache0_out"])
        model.metadata_props.append(onnx.StringStringEntryProto(key=MANIFEST_KEY, value=m if isinstance(m, str) else json.dumps(m)))
        path = folder / f"{graph_role}.onnx"
        _save(model, path)
        graphs[graph_role] = {"file": path.name, "sha256": graph_sha256(path)}
    main = folder / "denoiser.onnx"
    cond = main.with_name("denoiser.condition.onnx")
    _save(_condition_graph(2), cond)
    graphs["condition"] = {"file": cond.name, "sha256": graph_sha256(cond)}
    manifest = fake_manifest(codec="wan2.1", latent_channels=16, vae_weights_sha256=FAKE_VAE_SHA, graphs=graphs)
    return build_fake_onnx(main, manifest=manifest)


def _identity_graph(inputs: list[str], outputs: list[str]):
    dims = ["B", "C", "T", "H", "W"]
    nodes = [helper.make_node("Identity", [inputs[0]], [o]) for o in outputs]
    graph = helper.make_graph(
        nodes, "fake_vae", [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, dims) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
