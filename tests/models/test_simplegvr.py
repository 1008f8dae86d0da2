"""The network: shapes, determinism, the untrained default, presets."""

import subprocess
import sys

import pytest
import torch

import models
from models.checkpoint import init_random_


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("thw", [(1, 9, 11), (3, 13, 17)])
def test_upscale_shapes_for_odd_sizes(scale, thw):
    T, h, w = thw
    model = init_random_(models.build_model(scale=scale), seed=0)
    out = model.upscale(torch.rand(1, 3, T, h, w), steps=2)
    assert out.shape == (1, 3, T, scale * h, scale * w)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("attention", ["swin", "full", "masked"])
def test_other_attention_modes_run(attention):
    model = init_random_(models.build_model(attention=attention), seed=0)
    assert model.upscale(torch.rand(1, 3, 2, 10, 14), steps=1).shape == (1, 3, 2, 20, 28)


def test_deterministic_under_a_seed():
    model = init_random_(models.build_model(), seed=0)
    lr = torch.rand(1, 3, 3, 12, 16)
    a, b = model.upscale(lr, seed=7), model.upscale(lr, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.upscale(lr, seed=8))


def test_untrained_default_returns_its_upsampled_condition():
    model = models.build_model()  # the built-in default: zero-initialised residual head
    lr = torch.rand(1, 3, 6, 27, 48)
    out = model.upscale(lr, seed=3)
    with torch.no_grad():
        condition = model.codec_decode(model.upsampler(model.codec_encode(lr))).clamp(0, 1)
    err = (out - condition).abs().max().item()
    print(f"untrained default vs its upsampled condition: max abs {err:.2e}")
    assert err < 1e-5
    # ... which, with identity-initialised convs, is a plain bilinear upscale.
    bilinear = torch.nn.functional.interpolate(lr[0].transpose(0, 1), scale_factor=2, mode="bilinear")
    assert (out[0].transpose(0, 1) - bilinear).abs().max() < 1e-5


def test_noise_augmentation_level_is_conditioning():
    model = init_random_(models.build_model(), seed=0)
    lr = torch.rand(1, 3, 2, 10, 12)
    assert not torch.allclose(model.upscale(lr, noise_aug=0.3), model.upscale(lr, noise_aug=0.6))


def test_presets_and_overrides():
    assert set(models.PRESETS) >= {"tiny", "base"}
    model = models.build_model("tiny", scale=4, attention="swin")
    assert (model.config.scale, model.config.attention) == (4, "swin")
    with pytest.raises(ValueError, match="scale"):
        models.build_model(scale=3)
    with pytest.raises(ValueError, match="preset"):
        models.build_model("huge")


def test_manifest_declares_deployment_facts():
    model = models.build_model(scale=4)
    m = model.manifest()
    assert (m.scale, m.window, m.temporal_unit, m.patch) == (4, (9, 12), 5, 8)
    assert m.weights_sha256 == models.weights_sha256(model)
    m.validate()


def test_runtime_modules_do_not_import_torch():
    code = "import models.manifest, models.codec, models.rectified_flow, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_construction_is_seeded_so_the_default_is_reproducible():
    torch.manual_seed(123)
    a = models.build_model()
    torch.manual_seed(456)
    assert models.weights_sha256(a) == models.weights_sha256(models.build_model())
