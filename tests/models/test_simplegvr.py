"""The network: shapes, determinism, the untrained default, presets."""

import subprocess
import sys

import pytest
import torch

import models
from models.checkpoint import init_random_
from tests.tolerances import fake_model_atol, fp32_chain_atol


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
    assert err < fake_model_atol(steps=4, blends=0)  # zero head: the sampler's arithmetic on the condition
    # ... which, with identity-initialised convs, is a plain bilinear upscale.
    bilinear = torch.nn.functional.interpolate(lr[0].transpose(0, 1), scale_factor=2, mode="bilinear")
    assert (out[0].transpose(0, 1) - bilinear).abs().max() < fake_model_atol(steps=4, blends=0)  # identity convs add exact zeros


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
    m = model.manifest(graphs={"condition": {"file": "m.condition.onnx", "sha256": "0" * 64}})
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


@pytest.mark.parametrize("prediction", ["x0_residual", "velocity"])
def test_condition_and_step_split_equals_the_one_step_network(prediction):
    """The exported graphs: condition once, then step = Euler update around forward's velocity."""
    model = init_random_(models.build_model(prediction=prediction), seed=0)
    g = torch.Generator().manual_seed(0)
    lr, lr_noise = torch.rand(1, 3, 3, 13, 17, generator=g) * 2 - 1, torch.randn(1, 3, 3, 13, 17, generator=g)
    z, t, t_next, aug = torch.randn(1, 3, 3, 26, 34, generator=g), torch.tensor([0.75]), torch.tensor([0.5]), torch.tensor([0.3])
    with torch.no_grad():
        velocity = model(z, t, lr, lr_noise, aug)
        graphs = model.condition(lr, lr_noise, aug)
        assert len(graphs) == (2 if prediction == "x0_residual" else 1)
        assert torch.equal(model.velocity(z, t, graphs[0], aug, *graphs[1:]), velocity)
        z_next = model.step(z, t, t_next, graphs[0], aug, *graphs[1:])
    # z + dt * v in two orders or fusions: 3 roundings of values up to the largest of z and v.
    size = max(z.abs().max().item(), velocity.abs().max().item())
    assert torch.allclose(z_next, z + (t_next - t) * velocity, rtol=0, atol=fp32_chain_atol(3, magnitude=size))
    assert not model.step_independent()


def test_untrained_default_is_step_independent_so_it_runs_one_step():
    model = models.build_model()
    assert model.step_independent() and model.manifest().steps == 1 and model.config.steps == 4
    lr = torch.rand(1, 3, 6, 27, 48)
    one, four = model.upscale(lr, steps=1, seed=3), model.upscale(lr, steps=4, seed=3)
    assert (one - four).abs().max() < fake_model_atol(steps=4, blends=0)


# ---- the paper's block and conditioning ----------------------------------------------------------

PAPER_BLOCK = dict(depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3, spatial_attention=True, text_dim=16, text_tokens=6)


def test_any_output_size_and_an_integer_one_is_the_nominal_scale():
    model = init_random_(models.build_model("tiny", **PAPER_BLOCK), seed=2)
    lr = torch.rand(1, 3, 4, 13, 18)
    assert model.upscale(lr, steps=1, size=(29, 50)).shape == (1, 3, 4, 29, 50)  # x2.23 by x2.78
    assert torch.equal(model.upscale(lr, steps=2, size=(26, 36)), model.upscale(lr, steps=2))


def test_the_prompt_the_null_embedding_and_guidance():
    model = init_random_(models.build_model("tiny", **PAPER_BLOCK), seed=2)
    lr, prompt = torch.rand(1, 3, 4, 13, 18), torch.randn(1, 4, 16)
    none = model.upscale(lr, steps=2)
    assert torch.equal(none, model.upscale(lr, steps=2, prompt=model.null_text[None]))  # "no prompt" is the null embedding
    assert not torch.equal(none, model.upscale(lr, steps=2, prompt=prompt))
    assert torch.equal(model.upscale(lr, steps=2, prompt=prompt), model.upscale(lr, steps=2, prompt=prompt, cfg=1.0))
    assert not torch.equal(model.upscale(lr, steps=2, prompt=prompt), model.upscale(lr, steps=2, prompt=prompt, cfg=3.0))
    # A longer prompt loses its tail; a shorter one is padded with the null rows after it.
    long = torch.randn(1, 9, 16)
    assert torch.equal(model.prompt_tokens(long), model.prompt_tokens(long[:, :6]))
    assert torch.equal(model.prompt_tokens(prompt), model.prompt_tokens(torch.cat([prompt, model.null_text[None, 4:]], 1)))


def test_the_paper_block_has_its_sub_layers_and_tiny_stays_plain():
    block = models.build_model("tiny", **PAPER_BLOCK).blocks[0]
    assert block.spatial.temporal_unit == 1 and block.spatial.window == block.attn.window  # per frame, same windows
    assert block.cross.heads == 2 and block.adaLN[1].out_features == 9 * 32
    tiny = models.build_model("tiny").blocks[0]
    assert not hasattr(tiny, "spatial") and not hasattr(tiny, "cross") and tiny.adaLN[1].out_features == 6 * 64
    assert models.PRESETS["base"]["text_dim"] and models.PRESETS["base"]["spatial_attention"]


def test_spatial_and_text_cost_grows_linearly_with_area():
    from models.flops import layer_shares

    small, large = (layer_shares("tiny", hw, **PAPER_BLOCK) for hw in ((72, 96), (144, 192)))
    for layer in ("spatial", "text"):
        assert 3.5 < large[layer] / small[layer] < 4.5, layer  # 4x the pixels, ~4x the FLOPs
