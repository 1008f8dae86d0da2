"""Prompt sidecars: what a valid one gives the model, and one clear line for each broken one."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from gvrcli.errors import InputError
from gvrcli.inference.text import find_prompt, is_sidecar, load_prompt_embeds, sidecar_path
from models.manifest import ModelManifest
from tests.fake_model import fake_manifest


@pytest.fixture(scope="module")
def manifest():
    graphs = {role: {"file": f"m.{role}.onnx", "sha256": "ab" * 32} for role in ("condition", "text")}
    fields = fake_manifest(text_dim=4, text_tokens=3, graphs=graphs)
    fields["config"] = {"dim": 8}
    return ModelManifest(**{k: tuple(v) if k == "window" else v for k, v in fields.items()})


def _save(path, **tensors):
    save_file(tensors, str(path))
    return path


def test_the_sidecar_sits_beside_its_video_and_is_never_an_input(tmp_path):
    assert sidecar_path(tmp_path / "shot.01.mp4") == tmp_path / "shot.01.text.safetensors"
    assert is_sidecar(tmp_path / "shot.01.text.safetensors") and not is_sidecar(tmp_path / "shot.01.mp4")


def test_a_valid_sidecar_is_float32_and_cut_to_the_models_tokens(tmp_path, manifest):
    embeds = np.arange(20, dtype=np.float16).reshape(1, 5, 4)  # diffusers' (1, L, D) layout, fp16
    prompt = find_prompt(_save(tmp_path / "a.text.safetensors", prompt_embeds=embeds).with_name("a.mp4"), manifest)
    assert prompt.tokens.dtype == np.float32 and prompt.tokens.shape == (3, 4) and prompt.dropped == 2
    assert np.array_equal(prompt.tokens, embeds[0, :3])
    assert find_prompt(tmp_path / "none.mp4", manifest) is None  # no sidecar: no prompt


@pytest.mark.parametrize(
    "content, words",
    [
        (dict(prompt_embeds=np.zeros((5, 3), np.float32)), "shape (5, 3)"),
        (dict(prompt_embeds=np.zeros((2, 5, 4), np.float32)), "shape (2, 5, 4)"),
        (dict(prompt_embeds=np.zeros((5, 4), np.int32)), "int32"),
        (dict(prompt_embeds=np.full((2, 4), np.nan, np.float32)), "NaN"),
        (dict(embeds=np.zeros((2, 4), np.float32)), "no 'prompt_embeds'"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}", "not a readable safetensors"),
    ],
)
def test_a_broken_sidecar_is_one_line_naming_the_file(tmp_path, manifest, content, words):
    path = tmp_path / "clip.text.safetensors"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _save(path, **content)
    with pytest.raises(InputError) as e:
        load_prompt_embeds(path, manifest)
    assert str(path) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_embeddings_in_memory_are_checked_the_same_way(manifest):
    """The seam for a ``prompt_embeds`` tensor inside a latent input file."""
    assert load_prompt_embeds(np.ones((2, 4), np.float32), manifest, "clip.safetensors").tokens.shape == (2, 4)
    with pytest.raises(InputError, match="clip.safetensors: prompt_embeds has shape"):
        load_prompt_embeds(np.ones((2, 5), np.float32), manifest, "clip.safetensors")


def test_a_latent_file_carries_its_prompt_inside_or_beside_it(tmp_path, manifest):
    from gvrcli.inference.text import prompt_for_latents

    latents = np.zeros((16, 2, 3, 4), np.float32)
    inside = _save(tmp_path / "a.safetensors", latents=latents, prompt_embeds=np.ones((2, 4), np.float32))
    prompt = prompt_for_latents(inside, manifest)
    assert prompt.tokens.shape == (2, 4) and "a.safetensors (prompt_embeds)" in prompt.source
    beside = _save(tmp_path / "b.safetensors", latents=latents)
    assert prompt_for_latents(beside, manifest) is None  # no prompt anywhere: the null embedding
    _save(tmp_path / "b.text.safetensors", prompt_embeds=np.full((1, 4), 2, np.float32))
    assert np.array_equal(prompt_for_latents(beside, manifest).tokens, np.full((1, 4), 2, np.float32))
    bad = _save(tmp_path / "c.safetensors", latents=latents, prompt_embeds=np.ones((2, 5), np.float32))
    with pytest.raises(InputError, match="c.safetensors"):
        prompt_for_latents(bad, manifest)
