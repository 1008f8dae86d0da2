"""The prebuilt default models the runtime ships (``python -m export.assets`` builds them)."""

from __future__ import annotations

import pytest

from export.assets import SCALES, asset_path


@pytest.mark.parametrize("scale", SCALES)
def test_shipped_default_is_a_dynamic_fused_export_of_tiny(scale):
    import models
    from export.backends import OrtBackend, TorchBackend
    from export.graph_checks import onnx_op_counts
    from export.spec import DenoiserSpec, rel_l2
    from gvrcli.inference.modelfile import read_manifest

    path = asset_path(scale)
    assert path.is_file(), f"{path} missing: run python -m export.assets"
    manifest = read_manifest(path)
    tiny = models.build_model("tiny", scale=scale)
    assert manifest.scale == scale and manifest.dynamic and manifest.precision == "fp32"
    assert manifest.config == {**tiny.config.to_dict(), "window": list(tiny.config.window)}
    assert manifest.weights_sha256 == models.weights_sha256(tiny), "stale asset: rerun python -m export.assets"
    assert onnx_op_counts(path)["Attention"] == tiny.config.depth
    # The untrained default's output does not depend on its random trunk (zero head): any build matches.
    feed = DenoiserSpec(3, scale).dummy_inputs(3, 12, 20, seed=2)
    assert rel_l2(OrtBackend(path).run(feed), TorchBackend(tiny).run(feed)) < 1e-5
