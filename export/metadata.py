"""The gvr manifest inside every artefact: ONNX ``metadata_props`` and OpenVINO ``rt_info``.

Same key (``models.manifest.MANIFEST_KEY``) and same JSON in both, so the runtime reads either
with one function (the runtime's manifest reader, ``read_manifest``) and refuses a model whose manifest is missing or inconsistent.
"""

from __future__ import annotations


from models.manifest import MANIFEST_KEY, ModelManifest


def write_onnx(model_proto, manifest: ModelManifest) -> None:
    """Set the manifest on an ``onnx.ModelProto`` (replacing an older one)."""
    manifest.validate("export")
    kept = [p for p in model_proto.metadata_props if p.key != MANIFEST_KEY]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(kept)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = MANIFEST_KEY, manifest.to_json()


def write_openvino(ov_model, manifest: ModelManifest) -> None:
    manifest.validate("export")
    ov_model.set_rt_info(manifest.to_json(), MANIFEST_KEY)
