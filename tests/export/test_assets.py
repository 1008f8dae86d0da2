"""The prebuilt default models the runtime ships (``python tools/build_assets.py`` builds them)."""

from __future__ import annotations

import pytest

from tools.build_assets import SCALES, asset_path
from tests.tolerances import fake_model_atol, fp32_reassociation_rel_l2


@pytest.mark.parametrize("scale", SCALES)
def test_shipped_default_is_a_dynamic_fused_export_of_tiny(scale):
    import models
    from export.backends import OrtBackend, TorchBackend
    from export.graph_checks import onnx_op_counts
    from export.graphs import graph_module
    from export.spec import DenoiserSpec, rel_l2
    from export.verify import graph_files
    from gvrcli.inference.modelfile import graph_paths, read_manifest

    path = asset_path(scale)
    assert path.is_file(), f"{path} missing: run python tools/build_assets.py"
    manifest = read_manifest(path)
    tiny = models.build_model("tiny", scale=scale)
    assert manifest.scale == scale and manifest.dynamic and manifest.precision == "fp32"
    assert manifest.config == {**tiny.config.to_dict(), "window": list(tiny.config.window)}
    assert manifest.weights_sha256 == models.weights_sha256(tiny), "stale asset: rerun python tools/build_assets.py"
    assert manifest.format_version == 3 and manifest.steps == 1, "step-independent: the fewest steps"
    assert not manifest.has_text and manifest.shift == 1.0, "the default stays tiny: no text path, uniform schedule"
    assert set(graph_paths(path, manifest)) == {"condition", "step"}
    assert onnx_op_counts(path)["Attention"] == tiny.config.depth
    # The untrained default's output does not depend on its random trunk (zero head): any build matches.
    spec = DenoiserSpec.of(tiny.config)
    for role, file in graph_files("onnx", path).items():
        feed = spec.dummy_inputs(role, 3, 12, 20, seed=2)
        for got, want in zip(OrtBackend(file).run(feed), TorchBackend(graph_module(tiny, role)).run(feed)):
            # ORT vs PyTorch kernels: about 26 reductions of length <= 540 (a 5 x 9 x 12 attention unit).
            assert rel_l2(got, want) < fp32_reassociation_rel_l2(k=540, layers=26), role


def test_the_default_runs_one_step_and_gets_what_four_give():
    """Work once: the untrained default's output is step-independent, so its manifest says 1 step;
    through the runtime, 1 and 4 steps give the same frames."""
    import numpy as np

    from gvrcli.inference.ort_backend import OrtBackend
    from gvrcli.inference.engine import Upscaler
    from gvrcli.inference.settings import EngineSettings

    model = OrtBackend(asset_path(2), provider="cpu").load()
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 1, (3, 27, 40, 3)).astype(np.float32)
    assert EngineSettings.from_manifest(model.manifest).steps == 1
    one = Upscaler(model, EngineSettings.from_manifest(model.manifest)).upscale_chunk(lr, 0)
    four = Upscaler(model, EngineSettings.from_manifest(model.manifest, steps=4)).upscale_chunk(lr, 0)
    assert np.abs(one - four).max() < fake_model_atol(steps=4)  # zero head: the sampler's arithmetic only
