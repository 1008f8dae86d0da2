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
