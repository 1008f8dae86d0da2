"""Checkpoints: safetensors + config metadata, bit-exact round trip, clear errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

import models
from models.checkpoint import init_random_
from models.tensorfile import CheckpointError


def test_round_trip_is_bit_exact(tmp_path):
    model = init_random_(models.build_model(scale=4, depth=2), seed=5)
    path = models.save_model(model, tmp_path / "m.safetensors")
    loaded = models.load_model(path)
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert models.weights_sha256(loaded) == models.weights_sha256(model)
    lr = torch.rand(1, 3, 2, 8, 8)
    assert torch.equal(model.upscale(lr), loaded.upscale(lr))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = models.save_model(models.build_model(depth=1), tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="m.safetensors"):
        models.load_model(path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"definitely not safetensors")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable safetensors"):
        models.load_model(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        models.load_model(tmp_path / "missing.safetensors")


def test_other_architecture_is_refused(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(CheckpointError, match="not a SimpleGVR checkpoint"):
        models.load_model(other)


def test_missing_and_mismatched_tensors_are_named(tmp_path):
    model = models.build_model(depth=2)
    tensors = dict(model.state_dict())
    del tensors["blocks.1.mlp.0.weight"]
    tensors["final.linear.weight"] = torch.zeros(5, 5)
    meta = {"format": "simplegvr", "gvr.config": json.dumps(model.config.to_dict())}
    path = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
    with pytest.raises(CheckpointError) as err:
        models.load_model(path)
    msg = str(err.value)
    assert "missing blocks.1.mlp.0.weight" in msg
    assert "final.linear.weight has shape (5, 5)" in msg


def test_bad_config_in_metadata(tmp_path):
    path = tmp_path / "cfg.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "simplegvr", "gvr.config": '{"scale": 3}'})
    with pytest.raises(CheckpointError, match="bad config"):
        models.load_model(path)
