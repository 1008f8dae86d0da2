"""Project-wide test options: the ``index`` marker (tests that ask the package index) runs only when asked."""

from __future__ import annotations

import os

import pytest

# fp32 means fp32 on every CPU (tests/tolerances.py assumes it): oneDNN, under PyTorch, may run fp32
# convolutions and matmuls in bf16 or tf32 when this says so; pinned for this process and every gvr it starts.
os.environ["ONEDNN_DEFAULT_FPMATH_MODE"] = "STRICT"


def pytest_configure(config):
    config.addinivalue_line("markers", "index: asks the package index over the network; run with -m index")


@pytest.fixture(scope="session", autouse=True)
def compiled_caches(tmp_path_factory):
    """The runtimes' compiled-model caches (``gvrcli.inference.caches.COMPILED_CACHES``) in this
    session's temporary folder, for every ``gvr`` the tests start too: never the user's home."""
    from gvrcli.inference.caches import COMPILED_CACHES

    folder = tmp_path_factory.mktemp("compiled-caches")
    with pytest.MonkeyPatch.context() as env:
        for runtime, (variable, _) in COMPILED_CACHES.items():
            env.setenv(variable, str(folder / runtime))
        yield folder


# Tests that share one of these session-scoped exports run on one xdist worker, so each export is
# made once (by the worker that needs it) while the other worker runs the rest of the suite.
SHARED_EXPORTS = {
    "small_model": "small-exports", "dynamic_onnx": "small-exports", "openvino_ir": "small-exports",
    "static_unfused_onnx": "small-exports", "openvino_ir_from_onnx": "small-exports",
    "vae_trace_memo": "bundles", "latent_weights": "bundles", "onnx_bundle": "bundles", "openvino_bundle": "bundles",
    "fp16_onnx": "half-precision", "half_model": "half-precision", "bf16_onnx": "half-precision",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = next((SHARED_EXPORTS[name] for name in item.fixturenames if name in SHARED_EXPORTS), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if "index" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="asks the package index; run with -m index")
    for item in items:
        if "index" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------------------------------
# Latent-cascade bundles (issue 9): exported once per session, by ``gvr export --vae``, for the
# export tests and the runtime tests alike.
# --------------------------------------------------------------------------------------------------

LATENT_SR = dict(codec="wan2.1", patch=2, scale=2, depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3)
SMALL_VAE = dict(base_dim=16, num_res_blocks=1)


@pytest.fixture(scope="session")
def vae_trace_memo():
    """One dynamic trace per VAE graph and weights for the whole session: the ONNX and OpenVINO
    bundles (and export_vae calls on the same VAE) convert the same traced graph, as a single
    export does anyway; tracing a dynamic VAE graph is the slow part."""
    import export.vae as ev
    from models.vae import vae_sha256

    memo, original = {}, ev._trace

    def traced(module, graph, inputs, opset):
        key = (vae_sha256(module.vae), graph.stem, opset)
        if key not in memo:
            memo[key] = original(module, graph, inputs, opset)
        return memo[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(ev, "_trace", traced)
    yield memo
    mp.undo()


@pytest.fixture(scope="session")
def latent_weights(tmp_path_factory):
    """A random-weight tiny SimpleGVR in the Wan2.1 latent space, its VAE, and another VAE."""
    import models
    from models.checkpoint import init_random_

    d = tmp_path_factory.mktemp("latent_weights")
    models.save_model(init_random_(models.build_model("tiny", **LATENT_SR), seed=3), d / "sr.safetensors")
    models.save_vae(models.build_vae("wan2.1", **SMALL_VAE), d / "vae.safetensors")
    models.save_vae(models.build_vae("wan2.1", seed=1, **SMALL_VAE), d / "other_vae.safetensors")
    return d


def _export_bundle(weights, out, target, *extra):
    from typer.testing import CliRunner

    from gvrcli.cli import app

    args = ["export", "--weights", str(weights / "sr.safetensors"), "--vae", str(weights / "vae.safetensors"), "--target", target, "--out", str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="session")
def onnx_bundle(latent_weights, vae_trace_memo, tmp_path_factory):
    """(folder, export output) of ``gvr export --vae ... --target onnx --verify``."""
    return _export_bundle(latent_weights, tmp_path_factory.mktemp("bundles") / "onnx", "onnx", "--verify")


@pytest.fixture(scope="session")
def openvino_bundle(latent_weights, vae_trace_memo, tmp_path_factory):
    return _export_bundle(latent_weights, tmp_path_factory.mktemp("bundles") / "openvino", "openvino")
