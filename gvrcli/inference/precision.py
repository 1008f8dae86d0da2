"""Which precision a model runs in: what was asked, what the artefact holds, what the runtime computes.

Precision is explicit, never a runtime's own choice: the same command must compute the same numbers
on every farm node. An artefact exported at fp16, bf16 or int8 (``gvr export --precision``) runs
in its own precision; an fp32 one runs at fp32, or at bf16 on OpenVINO's CPU plugin when asked.
``artefact_precision`` is the one place those rules live, shared by both runtimes' backends;
a combination no runtime here can compute is a usage error (exit 2) that says what would work.
"""

from __future__ import annotations

from models.manifest import ModelManifest

from gvrcli.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")


def half_graph(manifest: ModelManifest) -> bool:
    """A true fp16/bf16 graph (``gvr export --precision fp16|bf16`` since issue 11), not an older
    fp16 export's fp16 weights with fp32 arithmetic."""
    return manifest.extra.get("compute") in ("fp16", "bf16")


def artefact_precision(requested: str | None, manifest: ModelManifest, runtime: str, extra: str = "") -> str:
    """The precision to run: ``requested``, or the artefact's own (fp32 for every fp32 export, which
    is all that ships). fp16, bf16 (ONNX) and int8 need artefacts exported so (``gvr export
    --precision``); ``runtime`` ("onnxruntime" on CPU, "onnxruntime-gpu", "openvino") decides
    what can compute it; ``extra`` names alternatives in the refusal."""
    have = manifest.precision
    want = requested or have
    if want not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)} (got {want!r})")
    # A true half-precision graph computes in its own dtype; an older fp16 export (fp16 weights,
    # fp32 arithmetic) also runs as fp32, and on OpenVINO as bf16.
    own_only = ("int8", "bf16") + (("fp16",) if half_graph(manifest) else ())
    if have in own_only and want != have:
        raise UsageError(f"--precision {want}: the model is a {have} artefact; run it with --precision {have} or use an fp32 export")
    if want in ("fp16", "int8") and have != want:
        raise UsageError(
            f"--precision {want}: the model is a {have} artefact; export one with gvr export --precision {want}{extra}"
        )
    if want == "bf16" and runtime == "onnxruntime":
        raise UsageError(
            "--precision bf16: ONNX Runtime's CPU provider has no bf16 kernels; run a bf16 artefact with "
            "--backend ort-cuda or openvino, or an fp32 one with --backend openvino --precision bf16"
        )
    if want == "bf16" and have == "fp32" and runtime != "openvino":
        raise UsageError("--precision bf16 on an fp32 artefact runs on OpenVINO's CPU plugin (--backend openvino); export a bf16 graph for ONNX Runtime CUDA")
    return want
