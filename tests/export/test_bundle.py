"""``gvr export --vae``: a bundle folder holding the denoiser and the VAE's four graphs, the
denoiser's manifest recording every graph's hash and the VAE weights' hash."""

import pytest

import models
from export import ExportError
from export.bundle import export_bundle
from models.manifest import VAE_ROLES, graph_sha256
from models.vae import vae_sha256

from gvrcli.inference.modelfile import read_manifest, resolve_model_path


@pytest.mark.parametrize("target, suffix", [("onnx", ".onnx"), ("openvino", ".xml")])
def test_a_bundle_records_its_vae_graphs_and_weights(target, suffix, onnx_bundle, openvino_bundle, latent_weights):
    folder, output = onnx_bundle if target == "onnx" else openvino_bundle
    main = resolve_model_path(folder)
    assert main == folder / f"denoiser{suffix}"
    manifest = read_manifest(main)
    assert manifest.codec == "wan2.1" and manifest.latent_channels == 16
    assert manifest.vae_weights_sha256 == vae_sha256(models.load_vae(latent_weights / "vae.safetensors"))
    assert set(manifest.graphs) == {"condition", *VAE_ROLES}
    for role in VAE_ROLES:
        entry = manifest.graphs[role]
        assert entry["file"] == f"{role}{suffix}" and graph_sha256(folder / entry["file"]) == entry["sha256"]
    assert not [p for p in folder.iterdir() if p.is_dir()]  # one flat folder


def test_the_onnx_bundle_is_verified_graph_by_graph(onnx_bundle):
    _, output = onnx_bundle
    for role in ("vae_encoder", "vae_decoder"):
        assert f"onnxruntime-cpu {role}" in output and f"openvino-cpu {role}" in output
    assert "FAIL" not in output.upper().replace("FAILED", "FAIL") or "ok" in output


def test_a_bundle_needs_a_latent_space_model(latent_weights, tmp_path):
    with pytest.raises(ExportError, match="'pixel' latent space"):
        export_bundle("onnx", tmp_path / "b", vae_weights=latent_weights / "vae.safetensors", config="tiny")
    with pytest.raises(ExportError, match="--vae"):
        export_bundle("onnx", tmp_path / "b", vae_weights=tmp_path / "missing.safetensors", weights=latent_weights / "sr.safetensors")
    assert not (tmp_path / "b").exists()
