"""Bad models and bad options for ``gvr upscale``: each must exit 2 with one clear line, before
any video is touched. Shared by the tests and ``benchmarks/reliability_report.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from media_cases import build_fake_onnx, fake_manifest


def _truncated(model, d):
    data = model.read_bytes()
    p = d / "truncated.onnx"
    p.write_bytes(data[: len(data) // 2])
    return p


def _write(d, name, data: bytes):
    p = d / name
    p.write_bytes(data)
    return p


# name -> (d, fake_model) -> model path; each must be refused with exit 2 and a line containing the word.
BAD_MODELS = {
    "missing": (lambda m, d: d / "nope.onnx", "no such file"),
    "truncated": (_truncated, "model"),
    "empty-file": (lambda m, d: _write(d, "empty.onnx", b""), "model"),
    "not-a-model-text": (lambda m, d: _write(d, "text.onnx", b"just some text\n" * 50), "model"),
    "not-a-model-random": (lambda m, d: _write(d, "random.onnx", os.urandom(2048)), "model"),
    "wrong-extension": (lambda m, d: _write(d, "model.pt", m.read_bytes()), ".onnx"),
    "manifest-missing": (lambda m, d: build_fake_onnx(d / "bare.onnx", with_manifest=False), "manifest"),
    "manifest-not-json": (lambda m, d: build_fake_onnx(d / "j.onnx", manifest="{not json"), "manifest"),
    "manifest-lacks-fields": (lambda m, d: build_fake_onnx(d / "l.onnx", manifest=json.dumps({"scale": 2})), "manifest"),
    "manifest-scale-3": (lambda m, d: build_fake_onnx(d / "s3.onnx", manifest=fake_manifest(scale=3)), "scale"),
    "manifest-disagrees-with-config": (
        lambda m, d: build_fake_onnx(d / "c.onnx", manifest=fake_manifest(config={"scale": 4})), "scale"),
    "manifest-newer-format": (
        lambda m, d: build_fake_onnx(d / "v.onnx", manifest=fake_manifest(format_version=99)), "version"),
    "manifest-channels-vs-graph": (
        # The manifest says 4 latent channels, the graphs take 3: a model that lies about itself.
        # (Its scale it cannot lie about: the output size is a graph input, any ratio runs.)
        lambda m, d: build_fake_onnx(d / "lie.onnx", manifest=fake_manifest(latent_channels=4)), "manifest"),
    "external-data-outside": (
        lambda m, d: build_fake_onnx(d / "m" / "ext.onnx", external_location="../secret.bin"), "outside"),
    "external-data-absolute": (
        lambda m, d: build_fake_onnx(d / "m" / "abs.onnx", external_location=str(d / "abs.bin")), "outside"),
    "external-data-missing": (
        lambda m, d: _drop_external(build_fake_onnx(d / "m" / "gone.onnx", external_location="weights.bin")), "missing"),
    "companion-graph-missing": (lambda m, d: _drop_companion(build_fake_onnx(d / "m" / "alone.onnx")), "condition graph"),
    "companion-graph-altered": (lambda m, d: _alter_companion(build_fake_onnx(d / "m" / "alt.onnx")), "sha-256"),
    "old-one-graph-format": (lambda m, d: build_fake_onnx(d / "old.onnx", manifest=fake_manifest(format_version=1)), "re-export"),
    "openvino-xml-without-bin": (lambda m, d: _write(d, "model.xml", b"<net name='x'></net>"), "bin"),
    "openvino-xml-garbage": (lambda m, d: (_write(d, "g.bin", b""), _write(d, "g.xml", b"garbage"))[1], "openvino"),
    # Forged or damaged manifests (issue #15, item 8): wrong types, wrong lengths, absurd sizes.
    **{
        f"manifest-{name}": (lambda m, d, name=name, fields=fields: build_fake_onnx(d / f"{name}.onnx", manifest=fake_manifest(**fields)), word)
        for name, fields, word in (
            ("window-text", {"window": "ab"}, "window"),
            ("window-one-element", {"window": [4]}, "window"),
            ("window-floats", {"window": [4.5, 4]}, "window"),
            ("steps-text", {"steps": "2"}, "steps"),
            ("steps-bool", {"steps": True}, "steps"),
            ("scale-text", {"scale": "2"}, "scale"),
            ("patch-absurd", {"patch": 10**12}, "patch"),
            ("temporal-unit-absurd", {"temporal_unit": 2**40}, "temporal_unit"),
            ("temporal-unit-negative", {"temporal_unit": -5}, "temporal_unit"),
            ("noise-aug-text", {"noise_aug": "x"}, "noise_aug"),
            ("config-not-object", {"config": [1, 2]}, "config"),
            ("config-window-number", {"config": {"window": 7}}, "window"),
            ("static-shape-text", {"dynamic": False, "static_shape": "8,64,64"}, "static_shape"),
            ("inputs-not-names", {"inputs": [1, 2]}, "inputs"),
        )
    },
    "manifest-array": (lambda m, d: build_fake_onnx(d / "arr.onnx", manifest="[1, 2, 3]"), "manifest"),
    "manifest-deeply-nested": (lambda m, d: build_fake_onnx(d / "deep.onnx", manifest="[" * 100000 + "]" * 100000), "manifest"),
    # External data (item 8, 13): malformed entries, and tensors outside the top-level initializers.
    "external-data-offset-text": (
        lambda m, d: _external_entry(build_fake_onnx(d / "m" / "off.onnx", external_location="w.bin"), "offset", "abc"), "offset"),
    "external-data-length-negative": (
        lambda m, d: _external_entry(build_fake_onnx(d / "m" / "len.onnx", external_location="w.bin"), "length", "-4"), "length"),
    "external-data-nul-in-name": (
        lambda m, d: _external_entry(build_fake_onnx(d / "m" / "nul.onnx", external_location="w.bin"), "location", "w.bin\0../x"), "name"),
    "external-data-symlink-out": (lambda m, d: _symlinked_external(m, d), "outside"),
    "external-data-in-constant-node": (lambda m, d: _with_extra_tensor(m, d, "constant"), "outside"),
    "external-data-in-sparse-initializer": (lambda m, d: _with_extra_tensor(m, d, "sparse"), "outside"),
    "external-data-in-subgraph": (lambda m, d: _with_extra_tensor(m, d, "subgraph"), "outside"),
    "openvino-bin-symlink-out": (lambda m, d: _openvino_ir(m, d, bin_outside=True), "outside"),
    "openvino-output-unnamed": (lambda m, d: _openvino_ir(m, d, unnamed_output=True), "z_next"),
}


def _drop_companion(model):
    model.with_name(model.stem + ".condition.onnx").unlink()
    return model


def _alter_companion(model):
    companion = model.with_name(model.stem + ".condition.onnx")
    companion.write_bytes(companion.read_bytes() + b"\0")
    return model


def _external_entry(model, key: str, value: str):
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == key:
            entry.value = value
            break
    else:
        proto.graph.initializer[0].external_data.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(proto, str(model))
    return model


def _symlinked_external(m, d):
    """External data whose name is inside the model's folder, but a link to a file outside it."""
    model = build_fake_onnx(d / "m" / "link.onnx", external_location="w.bin")
    (d / "secret.bin").write_bytes((model.parent / "w.bin").read_bytes())
    (model.parent / "w.bin").unlink()
    (model.parent / "w.bin").symlink_to(d / "secret.bin")
    return model


def _with_extra_tensor(m, d, where: str):
    """The fake model plus one tensor whose external data escapes the folder, in a Constant node,
    a sparse initializer, or an If node's subgraph (ONNX Runtime would read it; gvr must refuse first)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    model = build_fake_onnx(d / "m" / f"{where}.onnx")
    (d / "secret.bin").write_bytes(np.arange(5, dtype=np.float32).tobytes())
    proto = onnx.load(str(model))

    def external(name):
        t = helper.make_tensor(name, TensorProto.FLOAT, [5], [0.0] * 5)
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "20")):
            t.external_data.append(onnx.StringStringEntryProto(key=key, value=value))
        return t

    if where == "constant":
        proto.graph.node.append(helper.make_node("Constant", [], ["hidden"], value=external("c")))
    elif where == "sparse":
        values = external("sv")
        indices = helper.make_tensor("si", TensorProto.INT64, [5], [0, 1, 2, 3, 4])
        proto.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [5]))
    else:
        out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [5])
        branch = helper.make_graph([helper.make_node("Identity", ["x"], ["b"])], "branch", [], [out], [external("x")])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        proto.graph.initializer.append(cond)
        proto.graph.node.append(helper.make_node("If", ["cond"], ["hidden"], then_branch=branch, else_branch=branch))
    onnx.save(proto, str(model))
    return model


def _openvino_ir(m, d, bin_outside: bool = False, unnamed_output: bool = False):
    """The fake model as OpenVINO IR; its ``.bin`` a link out of the folder, or its output unnamed
    (what ``gvr export --target openvino`` wrote before the exporter named it)."""
    import openvino as ov
    from models.manifest import MANIFEST_KEY, graph_sha256

    xml = d / "ir" / "fake.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    condition = xml.with_name("fake.condition.xml")
    ov.save_model(ov.convert_model(str(m.with_name(m.stem + ".condition.onnx"))), str(condition))
    model = ov.convert_model(str(m))
    graphs = {"condition": {"file": condition.name, "sha256": graph_sha256(condition)}}
    model.set_rt_info(json.dumps(fake_manifest(graphs=graphs)), MANIFEST_KEY)
    if unnamed_output:
        model.outputs[0].get_tensor().set_names(set())
    ov.save_model(model, str(xml))
    if bin_outside:
        (d / "fake.bin").write_bytes(xml.with_suffix(".bin").read_bytes())
        xml.with_suffix(".bin").unlink()
        xml.with_suffix(".bin").symlink_to(d / "fake.bin")
    return xml


def _drop_external(model):
    (model.parent / "weights.bin").unlink()
    return model


# name -> (extra args, how to make the output dir, word in the error)
BAD_OPTIONS = {
    "scale-zero": (["--scale", "0"], None, "scale"),
    "size-odd-for-4:2:0": (["--size", "201x134"], None, "size"),
    "size-malformed": (["--size", "200by134"], None, "size"),
    "output-inside-input": ([], "inside", "input directory"),
    "output-is-the-input": ([], "same", "input directory"),
    "output-is-a-file": ([], "file", "not a directory"),
    "output-under-a-file": ([], "under-file", "output"),
    "shard-out-of-range": (["--shard", "3/3"], None, "shard"),
    "shard-negative": (["--shard", "-1/2"], None, "shard"),
    "shard-zero-count": (["--shard", "0/0"], None, "shard"),
    "shard-not-a-number": (["--shard", "a/b"], None, "shard"),
    "jobs-zero": (["--jobs", "0"], None, "jobs"),
    "unknown-codec": (["--codec", "divx"], None, "codec"),
    "unknown-pix-fmt": (["--pix-fmt", "yuv999p"], None, "pixel format"),
    "steps-zero": (["--steps", "0"], None, "steps"),
    "noise-aug-out-of-range": (["--noise-aug", "2"], None, "noise"),
    "unknown-backend": (["--backend", "tensorflow"], None, "backend"),
    # Issue #15, item 9: values of the right syntax but the wrong range or kind.
    "include-empty": (["--include="], None, "include"),
    "exclude-empty": (["--exclude", ""], None, "exclude"),
    "include-absolute": (["--include", "/etc/*"], None, "include"),
    "memory-budget-negative": (["--memory-budget", "-1"], None, "memory-budget"),
    "stall-timeout-nan": (["--stall-timeout", "nan"], None, "stall-timeout"),
    "stall-timeout-inf": (["--stall-timeout", "inf"], None, "stall-timeout"),
    "stall-timeout-zero": (["--stall-timeout", "0"], None, "stall-timeout"),
    "seed-negative": (["--seed", "-1"], None, "seed"),
    "seed-too-large": (["--seed", str(2**64)], None, "seed"),
    "seed-not-a-number": (["--seed", "abc"], None, "seed"),
    "noise-aug-nan": (["--noise-aug", "nan"], None, "noise"),
    "tile-negative": (["--tile", "-8"], None, "tile"),
    "max-pixels-zero": (["--max-pixels", "0"], None, "max-pixels"),
    "threads-negative": (["--threads", "-2"], None, "threads"),
    "crf-negative": (["--crf", "-5"], None, "crf"),
    "progress-interval-nan": (["--progress-interval", "nan"], None, "progress-interval"),
    "jobs-huge": (["--jobs", "100000"], None, "jobs"),
}


def option_output(where: str | None, tmp: Path, input_dir: Path) -> Path:
    """The OUTPUT_DIR a BAD_OPTIONS case hands to gvr (made into a file, or under one, as it says)."""
    if where == "inside":
        return input_dir / "out"
    if where == "same":
        return input_dir
    if where == "file":
        out = tmp / "file-out"
        out.write_text("I am a file")
        return out
    if where == "under-file":
        (tmp / "plain").write_text("a file, not a folder")
        return tmp / "plain" / "out"
    return tmp / "out"
