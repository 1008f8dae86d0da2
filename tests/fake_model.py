"""The fake gvr model the runtime tests run: a hand-built ONNX graph with the exported model's
inputs, output and manifest, whose velocity makes the Euler sampler land exactly on the bilinear
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
    """``velocity = (z_t - bilinear_up(lr)) / t``: the Euler sampler lands on the bilinear upscale.

    ``manifest`` may be raw text (to write broken JSON); ``external_location`` stores the scales
    tensor as ONNX external data at that location (relative to the model's folder, may escape it).
    ``drift`` = (gains, offsets) per channel: the sampler lands on ``gain * bilinear + offset`` in
    pixels instead (a colour cast, per pixel, so tiling stays exact).
    """
    dims_hr, dims_lr = ["B", 3, "T", "H", "W"], ["B", 3, "T", "h", "w"]
    inputs = [
        helper.make_tensor_value_info("z_t", TensorProto.FLOAT, dims_hr),
        helper.make_tensor_value_info("t", TensorProto.FLOAT, ["B"]),
        helper.make_tensor_value_info("lr", TensorProto.FLOAT, dims_lr),
        helper.make_tensor_value_info("lr_noise", TensorProto.FLOAT, dims_lr),
        helper.make_tensor_value_info("noise_aug", TensorProto.FLOAT, ["B"]),
    ]
    output = helper.make_tensor_value_info("velocity", TensorProto.FLOAT, dims_hr)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [5], [1, 1, 1, scale, scale])
    inits = [scales, helper.make_tensor("t_shape", TensorProto.INT64, [5], [-1, 1, 1, 1, 1])]
    nodes = [
        helper.make_node("Resize", ["lr", "", "scales"], ["up"], mode="linear", coordinate_transformation_mode="half_pixel"),
        helper.make_node("Sub", ["z_t", "x0" if drift else "up"], ["diff"]),
        helper.make_node("Reshape", ["t", "t_shape"], ["t5"]),
        helper.make_node("Div", ["diff", "t5"], ["velocity"]),
    ]
    if drift:  # pixels p = (latent + 1) / 2: gain * p + offset is gain * latent + (gain + 2 * offset - 1)
        gain, offset = np.asarray(drift[0], np.float32), np.asarray(drift[1], np.float32)
        inits += [
            helper.make_tensor("gain", TensorProto.FLOAT, [1, 3, 1, 1, 1], gain),
            helper.make_tensor("shift", TensorProto.FLOAT, [1, 3, 1, 1, 1], gain + 2 * offset - 1),
        ]
        nodes[1:1] = [helper.make_node("Mul", ["up", "gain"], ["scaled"]), helper.make_node("Add", ["scaled", "shift"], ["x0"])]
    model = helper.make_model(helper.make_graph(nodes, "fake_gvr", inputs, [output], inits), opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if with_manifest:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest or fake_manifest(scale=scale))
        model.metadata_props.append(onnx.StringStringEntryProto(key=MANIFEST_KEY, value=text))
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_location is not None:
        raw = np.array([1, 1, 1, scale, scale], dtype=np.float32).tobytes()
        target = (path.parent / external_location).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        t = model.graph.initializer[0]
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external_location), ("offset", "0"), ("length", str(len(raw)))):
            t.external_data.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model, str(path))
    return path
