"""Export SimpleGVR's denoiser step to ONNX and OpenVINO IR, verified against PyTorch.

Library first: ``export_model(...)`` returns an ``ExportReport``; ``verify_export(...)`` a
``VerifyReport``; the ``gvr export`` command only parses options and maps results to exit codes.
Each attention call becomes one fused node (``export.attention``); the manifest travels inside
every artefact (``export.metadata``). ``export_vae(...)`` exports the Wan2.1 VAE's chunk graphs
(``export.vae``) for the latent cascade.
"""

from export.errors import ExportError, VerifyError
from export.spec import MIN_OPSET, PRECISIONS, TOLERANCE, DenoiserSpec
from export.targets import OV_SOURCES, TARGETS, ExportReport, export_model, verify_export
from export.verify import VerifyReport, compare
from export.vae import VaeExportReport, export_vae, verify_vae_export

__all__ = [
    "DenoiserSpec",
    "ExportError",
    "ExportReport",
    "MIN_OPSET",
    "OV_SOURCES",
    "PRECISIONS",
    "TARGETS",
    "TOLERANCE",
    "VaeExportReport",
    "VerifyError",
    "VerifyReport",
    "compare",
    "export_model",
    "export_vae",
    "verify_export",
    "verify_vae_export",
]
