"""The latent cascade at run time: ``gvr upscale --model BUNDLE/`` on videos and latent files,
the chunked VAE runners against the one-piece PyTorch VAE, and bundles with another VAE's files."""

import shutil
import subprocess

import av
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import models
from gvrcli.batch.options import UpscaleOptions
from gvrcli.batch.upscale import upscale
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.modelfile import read_manifest, resolve_model_path
from gvrcli.inference.vae import ChunkedDecoder, ChunkedEncoder, read_vae
from models.vae import VaeCodec
from tests.tolerances import SMALL_VAE_DECODE_ATOL, SMALL_VAE_ENCODE_ATOL


def write_clip(path, frames, w=128, h=96, seed=0):
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(frames):
            img = rng.uniform(0, 255, (h, w, 3)).astype(np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))


def video_facts(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sum(1 for _ in c.decode(video=0)), s.width, s.height


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cascade_in")
    write_clip(d / "a.mp4", 17)
    write_clip(d / "b.mp4", 10, seed=1)
    latents = np.random.default_rng(2).standard_normal((16, 3, 12, 16)).astype(np.float32)
    save_file({"latents": latents}, str(d / "c.safetensors"), metadata={"fps": "24"})
    return d


@pytest.mark.parametrize("which", ["onnx", "openvino"])
def test_a_bundle_upscales_videos_and_latent_files(which, onnx_bundle, openvino_bundle, inputs, tmp_path):
    folder = (onnx_bundle if which == "onnx" else openvino_bundle)[0]
    out = tmp_path / "out"
    report = upscale([inputs], UpscaleOptions(out, model=folder, save_latents=which == "onnx"))
    assert [f.status for f in report.files] == ["done"] * 3, [f.reason for f in report.files]
    assert video_facts(out / "a.mp4") == (17, 256, 192)
    assert video_facts(out / "b.mp4") == (10, 256, 192)
    assert video_facts(out / "c.mkv") == (9, 256, 192)  # 4 (T - 1) + 1 frames at 8 s h x 8 s w
    if which == "onnx":  # HR latents beside each output: (C, T', 2 h, 2 w)
        assert load_file(str(out / "c.mkv.latents.safetensors"))["latents"].shape == (16, 3, 24, 32)
        assert load_file(str(out / "b.mp4.latents.safetensors"))["latents"].shape == (16, 4, 24, 32)
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert leftovers == []


def test_chunked_runners_equal_the_one_piece_vae(onnx_bundle, latent_weights):
    main = resolve_model_path(onnx_bundle[0])
    manifest = read_manifest(main)
    loaded = OrtBackend(main, provider="cpu").load(manifest)
    graphs = read_vae(main, manifest)
    codec = VaeCodec(models.load_vae(latent_weights / "vae.safetensors"))
    x = np.random.default_rng(0).uniform(0, 1, (3, 9, 24, 40)).astype(np.float32)
    enc = ChunkedEncoder(loaded, graphs)
    lat = [z for t in range(9) for z in enc.push(x[:, t])] + enc.finish()
    expected = codec.encode(torch.from_numpy(x)[None]).numpy()[0]  # (16, 3, 3, 5)
    np.testing.assert_allclose(np.stack(lat, axis=1), expected, atol=SMALL_VAE_ENCODE_ATOL)  # ORT's kernels vs PyTorch's
    dec = ChunkedDecoder(loaded, graphs)
    frames = [f for z in lat for f in dec.push(z)]
    expected = codec.decode(torch.from_numpy(np.stack(lat, axis=1))[None]).numpy()[0]  # (3, 9, 24, 40)
    np.testing.assert_allclose(np.stack(frames, axis=1), expected, atol=SMALL_VAE_DECODE_ATOL)


def test_a_bundle_with_another_vaes_file_is_refused(onnx_bundle, latent_weights, inputs, tmp_path, gvr_cmd, cli_env):
    import export.vae as ev

    swapped = tmp_path / "swapped"
    shutil.copytree(onnx_bundle[0], swapped)
    other = models.load_vae(latent_weights / "other_vae.safetensors")
    graph = next(g for g in ev.GRAPHS if g.stem == "vae_encoder_first")  # one graph of another VAE is enough
    module = graph.build(other)
    manifest = ev.graph_manifest(other, module, graph, "fp32", 23, "onnx")
    (swapped / "vae_encoder_first.onnx").unlink()
    ev.TARGETS["onnx"].run(module, graph, ev.graph_inputs(module, graph), swapped, manifest, "fp32", 23)
    out = tmp_path / "out"
    done = subprocess.run([*gvr_cmd, "upscale", str(inputs / "b.mp4"), str(out), "--model", str(swapped)], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "vae_encoder_first" in done.stderr and not out.exists()


def test_latent_files_need_a_bundle_and_a_valid_header(onnx_bundle, inputs, tmp_path):
    report = upscale([inputs / "c.safetensors"], UpscaleOptions(tmp_path / "o1"))
    assert report.files[0].status == "failed" and "needs a latent-cascade bundle" in report.files[0].reason
    bad = tmp_path / "bad"
    bad.mkdir()
    save_file({"latents": np.zeros((8, 3, 4, 4), np.float32)}, str(bad / "ch.safetensors"), metadata={"fps": "24"})
    save_file({"latents": np.zeros((16, 3, 4, 4), np.float32)}, str(bad / "fps.safetensors"), metadata={"fps": "-3"})
    save_file({"other": np.zeros((16, 3, 4, 4), np.float32)}, str(bad / "key.safetensors"), metadata={"fps": "24"})
    (bad / "junk.safetensors").write_bytes(b"not safetensors")
    paths = sorted(bad.iterdir())
    report = upscale(paths, UpscaleOptions(tmp_path / "o2", model=onnx_bundle[0]))
    reasons = {r.source.name: r.reason for r in report.files}
    assert "16" in reasons["ch.safetensors"] and "8 channels" in reasons["ch.safetensors"]
    assert "fps" in reasons["fps.safetensors"] and "'latents'" in reasons["key.safetensors"]
    assert "not a readable safetensors file" in reasons["junk.safetensors"]
    assert all(str(bad / name) in reason for name, reason in reasons.items())
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_a_bundle_refuses_an_output_size_other_than_its_scale(onnx_bundle, inputs, tmp_path):
    """The VAE decodes the denoiser's latent grid 8 px per cell: --size would be read in latent cells."""
    from gvrcli.errors import UsageError

    with pytest.raises(UsageError, match="upscales x2 only"):
        upscale([inputs], UpscaleOptions(tmp_path / "out", model=onnx_bundle[0], size=(200, 150)))


def _edit_manifest(path, edit):
    """Rewrite the gvr manifest inside an ONNX file (its external data stays where it is)."""
    import json

    import onnx
    from models.manifest import MANIFEST_KEY

    model = onnx.load(str(path), load_external_data=False)
    entry = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    entry.value = json.dumps(edit(json.loads(entry.value)))
    onnx.save(model, str(path))


def test_a_forged_but_rehashed_vae_manifest_is_refused_at_load(onnx_bundle, inputs, tmp_path, gvr_cmd, cli_env):
    """Issue 23 item 11: a VAE manifest whose cache channels disagree with its graph, the bundle's
    hashes recomputed so every file check passes: the test run of the VAE graphs at load refuses
    it (exit 2, one line naming the model), not every file at run time."""
    from models.manifest import graph_sha256

    forged = tmp_path / "forged"
    shutil.copytree(onnx_bundle[0], forged)

    def channels_17(m):
        m["caches"][0]["channels"] = 17
        return m

    _edit_manifest(forged / "vae_decoder.onnx", channels_17)

    def rehash(m):
        m["graphs"]["vae_decoder"]["sha256"] = graph_sha256(forged / "vae_decoder.onnx")
        return m

    _edit_manifest(forged / "denoiser.onnx", rehash)
    out = tmp_path / "out"
    done = subprocess.run([*gvr_cmd, "upscale", str(inputs / "b.mp4"), str(out), "--model", str(forged)], env=cli_env, capture_output=True, text=True, timeout=300)
    errors = [x for x in done.stderr.splitlines() if x.startswith("gvr: error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "VAE graphs" in errors[0] and str(forged) in errors[0] and "Traceback" not in done.stderr
    assert not out.exists()


def test_openvino_bf16_keeps_the_vae_graphs_in_f32(onnx_bundle):
    """--precision bf16 on OpenVINO speeds the denoiser up; the VAE graphs stay f32 (OpenVINO's bf16
    VAE decode lost 30 dB against eager bf16: gvrcli.inference.openvino_model.graph_config)."""
    from gvrcli.errors import UsageError
    from gvrcli.inference.openvino_backend import OpenVinoBackend
    from gvrcli.inference.openvino_model import graph_config

    assert graph_config({"INFERENCE_PRECISION_HINT": "bf16"}, "vae_decoder")["INFERENCE_PRECISION_HINT"] == "f32"
    assert graph_config({"INFERENCE_PRECISION_HINT": "bf16"}, "step")["INFERENCE_PRECISION_HINT"] == "bf16"
    main = resolve_model_path(onnx_bundle[0])
    manifest = read_manifest(main)
    try:
        model = OpenVinoBackend(main, device="CPU", precision="bf16").load(manifest)
    except UsageError:
        pytest.skip("this CPU does not compute bf16 in OpenVINO")
    hint = {role: str(model.compiled[role].get_property("INFERENCE_PRECISION_HINT")) for role in model.compiled}
    assert all(("float32" in h) == role.startswith("vae") for role, h in hint.items()), hint
