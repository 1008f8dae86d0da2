"""The Wan2.1 VAE as SimpleGVR's latent codec: build/save/load, the chunked causal steps, the cascade.

Random-weight small VAEs (``base_dim=16, num_res_blocks=1``) and tiny clips; nothing downloads.
"""

import json

import pytest
import torch
from safetensors.torch import save_file

import models
from models.codec import VaeRequired, get_codec, latent_frames, video_frames
from models.vae import CONFIG_KEY, VaeCodec, VaeDecoderStep, VaeEncoderStep, VaeError, cache_specs, vae_config, vae_sha256
from tests import tolerances
from tests.tolerances import SMALL_VAE_DECODE_ATOL, SMALL_VAE_ENCODE_ATOL

SMALL = dict(base_dim=16, num_res_blocks=1)


@pytest.fixture(scope="module")
def vae():
    return models.build_vae("wan2.1", **SMALL)


@pytest.fixture(scope="module")
def codec(vae):
    return VaeCodec(vae)


def clip(T, H=16, W=24, seed=0):
    return torch.rand(1, 3, T, H, W, generator=torch.Generator().manual_seed(seed))


def normalised(vae, z):
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    return (z - mean) / std, mean, std


# --------------------------------------------------------------------------------------------------
# The codec's shape arithmetic (torch-free descriptor)
# --------------------------------------------------------------------------------------------------


def test_wan21_codec_describes_the_latent_space():
    c = get_codec("wan2.1")
    assert (c.channels, c.spatial_factor, c.temporal_factor) == (16, 8, 4)
    assert [latent_frames(c, T) for T in (1, 5, 9, 17, 10)] == [1, 2, 3, 5, 4]  # 10 frames pad to 13
    assert [video_frames(c, t) for t in (1, 2, 5)] == [1, 5, 17]
    with pytest.raises(VaeRequired, match="needs VAE weights"):
        c.encode(torch.zeros(1, 3, 1, 8, 8))


def test_build_model_takes_its_latent_channels_from_the_codec():
    assert models.build_model("tiny", codec="wan2.1", patch=2, depth=1).config.latent_channels == 16
    assert models.build_model("tiny", depth=1).config.latent_channels == 3
    with pytest.raises(ValueError, match="does not match codec 'wan2.1'"):
        models.build_model("tiny", codec="wan2.1", latent_channels=3)


# --------------------------------------------------------------------------------------------------
# Build, save, load
# --------------------------------------------------------------------------------------------------


def test_build_is_seeded_and_reproducible(vae):
    assert vae_sha256(models.build_vae(**SMALL)) == vae_sha256(vae)
    assert vae_sha256(models.build_vae(seed=1, **SMALL)) != vae_sha256(vae)
    assert vae_config(vae)["base_dim"] == 16 and vae_config(vae)["z_dim"] == 16


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(z_dim=8), "z_dim 8"),
        (dict(is_residual=True), "Wan2.2-style"),
        (dict(temperal_downsample=[False, False, True]), "2x temporal"),
        (dict(colour=1), "unknown wan2.1 VAE config fields: colour"),
    ],
)
def test_other_vaes_are_refused(override, message):
    with pytest.raises(VaeError, match=message):
        models.build_vae(**SMALL, **override)


def test_save_load_round_trip_is_bit_exact(vae, tmp_path):
    path = models.save_vae(vae, tmp_path / "vae.safetensors")
    loaded = models.load_vae(path)
    assert vae_config(loaded) == vae_config(vae)
    assert vae_sha256(loaded) == vae_sha256(vae)


def test_loads_a_diffusers_format_file_with_its_config_json(vae, tmp_path):
    # A Wan2.1 diffusers repo's vae/ folder: diffusion_pytorch_model.safetensors (no gvr metadata,
    # often bf16) + config.json with diffusers' private keys.
    folder = tmp_path / "vae"
    folder.mkdir()
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKLWan", "_diffusers_version": "0.33.0", **vae_config(vae)}))
    loaded = models.load_vae(folder / "diffusion_pytorch_model.safetensors")
    assert vae_config(loaded) == vae_config(vae)
    assert next(loaded.parameters()).dtype == torch.float32
    # An explicit config (dict or file) works too; without any, the Wan2.1 defaults are assumed.
    assert vae_config(models.load_vae(folder / "diffusion_pytorch_model.safetensors", config=vae_config(vae)))["base_dim"] == 16
    (folder / "config.json").unlink()
    with pytest.raises(VaeError, match="does not match a Wan2.1 VAE of its config: .*has shape"):
        models.load_vae(folder / "diffusion_pytorch_model.safetensors")


def test_missing_and_mismatched_tensors_are_named(vae, tmp_path):
    tensors = {k: v.contiguous() for k, v in vae.state_dict().items()}
    del tensors["decoder.conv_out.weight"]
    tensors["encoder.conv_in.bias"] = torch.zeros(3)
    tensors["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={CONFIG_KEY: json.dumps(vae_config(vae))})
    with pytest.raises(VaeError) as err:
        models.load_vae(path)
    msg = str(err.value)
    assert "bad.safetensors" in msg and "missing decoder.conv_out.weight" in msg and "unexpected extra.weight" in msg
    assert "encoder.conv_in.bias has shape (3,), expected (16,)" in msg


def test_unreadable_and_foreign_files_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(VaeError, match="not a readable safetensors"):
        models.load_vae(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other))
    with pytest.raises(VaeError, match="AutoencoderKL, not AutoencoderKLWan"):
        models.load_vae(other, config=_write(tmp_path / "cfg.json", {"_class_name": "AutoencoderKL"}))
    with pytest.raises(VaeError, match="cfg.json is not valid JSON"):
        models.load_vae(other, config=_write(tmp_path / "cfg.json", "{"))


def _write(path, cfg):
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return path


# --------------------------------------------------------------------------------------------------
# Chunked with explicit caches == diffusers' one-piece encode / decode (within fp32 reassociation)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 9, 17])
def test_chunked_encode_and_decode_equal_diffusers(vae, codec, T):
    x = clip(T)
    with torch.no_grad():
        mode = vae.encode(x * 2 - 1).latent_dist.mode()  # diffusers' Wan pipelines: sample_mode="argmax"
        expected, mean, std = normalised(vae, mode)  # and then (z - latents_mean) / latents_std
        lat = codec.encode(x)
        decoded = (vae.decode(expected * std + mean).sample + 1) / 2
        pixels = codec.decode(lat)
    # Equal within fp32 reassociation: the same convolutions on chunks instead of the whole clip let
    # the kernels block and vectorise differently (0 on one Xeon, 1.6e-6 on an AMD EPYC).
    assert lat.shape == (1, 16, (T - 1) // 4 + 1, 2, 3)
    torch.testing.assert_close(lat, expected, rtol=0, atol=SMALL_VAE_ENCODE_ATOL)
    assert pixels.shape == x.shape
    torch.testing.assert_close(pixels, decoded, rtol=0, atol=SMALL_VAE_DECODE_ATOL)


def test_steps_of_several_latent_frames_agree(vae, codec):
    x = clip(9)
    two = VaeCodec(vae, latent_frames_per_step=2)
    torch.testing.assert_close(two.encode(x), codec.encode(x), rtol=0, atol=SMALL_VAE_ENCODE_ATOL)
    torch.testing.assert_close(two.decode(codec.encode(x)), codec.decode(codec.encode(x)), rtol=0, atol=SMALL_VAE_DECODE_ATOL)


def test_small_vae_has_the_shape_its_tolerances_assume(vae):
    """The growth factors behind SMALL_VAE_*_ATOL (tests/tolerances.py): reduction length, depth of
    each path and the size of the conv outputs."""
    convs = {n: m for n, m in vae.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))}
    assert max(m.weight[0].numel() for m in convs.values()) == tolerances.SMALL_VAE_K
    assert sum(n.startswith("encoder") for n in convs) <= tolerances.SMALL_VAE_ENCODER_LAYERS
    assert sum(n.startswith("decoder") for n in convs) <= tolerances.SMALL_VAE_DECODER_LAYERS
    peak = []
    hooks = [m.register_forward_hook(lambda m, i, o: peak.append(float(o.abs().max()))) for m in convs.values()]
    with torch.no_grad():
        vae.decode(vae.encode(clip(5) * 2 - 1).latent_dist.mode())
    for h in hooks:
        h.remove()
    assert max(peak) < tolerances.SMALL_VAE_MAGNITUDE


def test_caches_have_fixed_shapes_from_the_first_chunk_on(vae):
    """Bounded memory and static graphs: every step takes and returns the same cache shapes."""
    for Step, first_in, step_in in ((VaeEncoderStep, clip(1), clip(4)), (VaeDecoderStep, torch.randn(1, 16, 1, 2, 3), torch.randn(1, 16, 1, 2, 3))):
        first, step = Step(vae, first=True), Step(vae)
        H, W = first_in.shape[-2:]
        shapes = [s.shape(H, W) for s in cache_specs(vae, step.role)]
        with torch.no_grad():
            _, *cache = first(first_in)
            assert [tuple(c.shape) for c in cache] == shapes
            for _ in range(2):
                _, *cache = step(step_in, *cache)
                assert [tuple(c.shape) for c in cache] == shapes


def test_the_first_chunk_is_its_own_graph(vae):
    """Zero caches reproduce every causal convolution's first chunk, but not the temporal resampling:
    the first latent frame decodes to one frame, later ones to four, so the first chunk is a
    separate (control-flow-free) module rather than the step with zero caches."""
    dec_first, dec = VaeDecoderStep(vae, first=True), VaeDecoderStep(vae)
    z = torch.randn(1, 16, 1, 2, 3)
    zeros = [torch.zeros(s.shape(2, 3)) for s in dec.specs]
    with torch.no_grad():
        assert dec_first(z)[0].shape[2] == 1
        assert dec(z, *zeros)[0].shape[2] == 4
    with pytest.raises(ValueError, match="takes no caches"):
        dec_first(z, *zeros)
    with pytest.raises(ValueError, match="expected 24 cache tensors"):
        dec(z)


# --------------------------------------------------------------------------------------------------
# The cascade end to end: encode -> SimpleGVR in latent space -> decode
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def latent_model():
    return models.init_random_(models.build_model("tiny", codec="wan2.1", patch=2, scale=2, depth=2), seed=3)


@pytest.mark.parametrize("T", [17, 10])
def test_upscale_through_the_vae(latent_model, vae, codec, T):
    x = clip(T)
    out = latent_model.upscale(x, steps=2, vae=vae)
    assert out.shape == (1, 3, T, 32, 48) and 0 <= out.min() and out.max() <= 1
    # Exactly: pad to 4n + 1 frames, encode, sample in latent space, decode, crop.
    hr = latent_model.sample(codec.encode(x), steps=2)
    assert hr.shape == (1, 16, latent_frames(codec, T), 4, 6)
    torch.testing.assert_close(out, codec.decode(hr)[:, :, :T].clamp(0, 1))


def test_odd_sizes_are_padded_and_cropped(latent_model, vae):
    assert latent_model.upscale(clip(2, 12, 20), steps=1, vae=vae).shape == (1, 3, 2, 24, 40)


def test_a_vae_codec_needs_the_vae_and_a_pixel_model_refuses_one(latent_model, vae):
    with pytest.raises(VaeRequired):
        latent_model.upscale(clip(1), steps=1)
    with pytest.raises(ValueError, match="works in the 'pixel' latent space"):
        models.build_model("tiny", depth=1).upscale(clip(1), vae=vae)
