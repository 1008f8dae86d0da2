"""The deployment manifest round-trips and refuses what it does not understand."""

import json

import pytest

from models.manifest import ManifestError, ModelManifest
from models.rectified_flow import euler_sample, timesteps


def _manifest(**kw):
    base = dict(
        config={"scale": 2, "patch": 8, "window": [9, 12], "temporal_unit": 5, "latent_channels": 3},
        scale=2, latent_channels=3, patch=8, window=(9, 12), temporal_unit=5, steps=4,
        noise_aug=0.3, prediction="x0_residual", attention="sparse",
        graphs={"condition": {"file": "m.condition.onnx", "sha256": "ab" * 32}},
    )
    return ModelManifest(**{**base, **kw})


def test_round_trip():
    m = _manifest()
    assert ModelManifest.from_json(m.to_json()) == m


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "missing"),
        ("{not json", "not valid JSON"),
        (json.dumps({"scale": 2}), "lacks"),
        (_manifest(scale=3).to_json(), "scale 3"),
        (_manifest(patch=4).to_json(), "disagrees with its config"),
        (_manifest(codec="wan-vae").to_json(), "unknown latent codec"),
        (_manifest(format_version=99).to_json(), "newer"),
        (_manifest(dynamic=False).to_json(), "static_shape"),
        (_manifest(format_version=1).to_json(), "re-export"),
        (_manifest(graphs={}).to_json(), "'condition' is missing"),
        (_manifest(graphs={"condition": {"file": "../x.onnx", "sha256": "ab" * 32}}).to_json(), "plain file name"),
        (_manifest(graphs={"condition": {"file": "x.onnx", "sha256": "nope"}}).to_json(), "sha256"),
        (_manifest(inputs=("z_t", "t", "lr", "lr_noise", "noise_aug")).to_json(), "inputs/outputs"),
    ],
)
def test_refuses_missing_or_inconsistent(text, message):
    with pytest.raises(ManifestError, match=message):
        ModelManifest.from_json(text, source="m.onnx")


def test_euler_sampler_recovers_x0_from_exact_velocity():
    import numpy as np

    x0, eps = np.linspace(-1, 1, 12), np.cos(np.arange(12.0))
    assert timesteps(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    out = euler_sample(lambda z, t: (z - x0) / t, eps, steps=3)  # v = (z_t - x0) / t = eps - x0
    assert np.allclose(out, x0)
    with pytest.raises(ValueError):
        timesteps(0)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(text_dim=32, text_tokens=8), "'text' is missing"),  # a text path needs its text graph
        (dict(text_dim=32, text_tokens=0), "both be positive"),
        (dict(shift=0.0), "shift"),
        (dict(text_dim=32, text_tokens=8, graphs={**_manifest().graphs, "text": {"file": "m.text.onnx", "sha256": "cd" * 32}}), "width"),
    ],
)
def test_refuses_an_inconsistent_text_path_or_schedule(fields, message):
    with pytest.raises(ManifestError, match=message):
        ModelManifest.from_json(_manifest(**fields).to_json(), source="m.onnx")


def test_a_text_model_steps_on_its_prompt_tokens():
    text = {"file": "m.text.onnx", "sha256": "cd" * 32}
    m = _manifest(text_dim=32, text_tokens=8, config={**_manifest().config, "dim": 64}, graphs={**_manifest().graphs, "text": text})
    assert ModelManifest.from_json(m.to_json()) == m
    assert m.inputs[-1] == "text" and "text" not in _manifest().inputs


def test_shifted_schedule_spends_more_steps_at_high_noise():
    uniform, shifted = timesteps(4), timesteps(4, shift=3.0)
    assert timesteps(4, shift=1.0) == uniform
    assert shifted[0] == 1.0 and shifted[-1] == 0.0 and shifted == sorted(shifted, reverse=True)
    assert all(s > u for s, u in zip(shifted[1:-1], uniform[1:-1]))
    assert shifted[2] == pytest.approx(0.75)  # 3 * 0.5 / (1 + 2 * 0.5)
