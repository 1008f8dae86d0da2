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
    "manifest-scale-vs-graph": (
        # The manifest says x4, the graph upscales x2: a model that lies about itself.
        lambda m, d: build_fake_onnx(d / "lie.onnx", scale=2, manifest=fake_manifest(scale=4)), "scale"),
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
}


def _drop_companion(model):
    model.with_name(model.stem + ".condition.onnx").unlink()
    return model


def _alter_companion(model):
    companion = model.with_name(model.stem + ".condition.onnx")
    companion.write_bytes(companion.read_bytes() + b"\0")
    return model


def _drop_external(model):
    (model.parent / "weights.bin").unlink()
    return model


# name -> (extra args, how to make the output dir, word in the error)
BAD_OPTIONS = {
    "scale-not-supported-by-model": (["--scale", "4"], None, "scale"),
    "scale-3": (["--scale", "3"], None, "scale"),
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
