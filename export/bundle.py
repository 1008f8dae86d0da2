"""A latent-cascade bundle: the denoiser and the VAE it works in, in one folder (``gvr export --vae``).

SimpleGVR trained in a video VAE's latent space runs as decode -> VAE encode -> denoiser -> VAE
decode -> encode, so its artefact is a folder::

    BUNDLE/denoiser.onnx            the step graph; its manifest names every other graph
    BUNDLE/denoiser.condition.onnx
    BUNDLE/vae_encoder_first.onnx   BUNDLE/vae_encoder.onnx      (export.vae)
    BUNDLE/vae_decoder_first.onnx   BUNDLE/vae_decoder.onnx

(OpenVINO: ``.xml`` + ``.bin`` each). The denoiser's manifest records the VAE graphs in its
``graphs`` mapping (role -> file, SHA-256), like its condition graph, and the VAE weights' hash in
``vae_weights_sha256``, so the runtime refuses a bundle whose ``vae_*`` files were swapped for
another VAE's. The folder is staged and renamed into place: nothing half-written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from export.errors import ExportError
from export.progress import OnStage, silent
from models.manifest import BUNDLE_MAIN as MAIN_STEM


@dataclass
class BundleReport:
    target: str
    path: Path  # the folder
    denoiser: object  # export.targets.ExportReport (its paths were in the staging folder)
    vae: object  # export.vae.VaeExportReport

    @property
    def main_file(self) -> Path:
        return self.path / f"{MAIN_STEM}{'.onnx' if self.target == 'onnx' else '.xml'}"

    @property
    def verify_lines(self) -> list[str]:
        return [line for r in (self.denoiser.verify, self.vae.verify) if r is not None for line in r.lines()]

    @property
    def verified(self) -> bool:
        return all(r.ok for r in (self.denoiser.verify, self.vae.verify) if r is not None)

    def summary(self) -> str:
        size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()) / 1e6
        return (
            f"{self.target}: bundle {self.path} ({size:.1f} MB): denoiser {self.main_file.name} "
            f"({self.denoiser.precision}, {self.denoiser.attention} attention) + 4 VAE graphs (any frame size)"
        )


def export_bundle(
    target: str,
    out: str | Path,
    *,
    vae_weights: str | Path,
    config: str | None = None,
    weights: str | Path | None = None,
    precision: str = "fp32",
    force: bool = False,
    verify: bool = False,
    on_stage: OnStage = silent,
    **options,
) -> BundleReport:
    """Export the denoiser (``config`` / ``weights``, as ``export_model``) and the VAE at
    ``vae_weights`` (``models.load_vae``) into the folder ``out``. The denoiser must work in the
    VAE's latent space (``codec="wan2.1"``). ``verify`` checks both against PyTorch.
    ``on_stage`` hears each stage (``export.progress``)."""
    from export.outputs import check_writable, staged
    from export.sources import load_source
    from export.targets import TARGETS, export_model
    from export.vae import export_vae
    from models.vae import VaeError, load_vae

    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")
    out = Path(out)
    check_writable(out, force)
    source = load_source(config, None if weights is None else str(weights), None)
    model = source.model
    if model.config.codec != "wan2.1":
        raise ExportError(
            f"--vae: the model works in the {model.config.codec!r} latent space, not the wan2.1 VAE's "
            "(a bundle needs a checkpoint trained with codec wan2.1)"
        )
    try:
        vae = load_vae(vae_weights)
    except (VaeError, OSError) as e:
        raise ExportError(f"--vae {vae_weights}: {e}") from None
    with staged(out, force, is_dir=True) as stage:
        vae_report = export_vae(vae, target, stage, precision=precision, verify=verify, on_stage=on_stage)
        recorded = {"graphs": {r: {"file": e["file"], "sha256": e["sha256"]} for r, e in vae_report.companions().items()},
                    "weights_sha256": vae_report.weights_sha256}
        spec = TARGETS[target]
        inner = stage / (f"{MAIN_STEM}.onnx" if not spec.is_dir else f"{MAIN_STEM}{spec.suffix}")
        denoiser = export_model(target, inner, model=model, precision=precision, verify=verify, vae=recorded, on_stage=on_stage, **options)
        if spec.is_dir:  # OpenVINO writes a folder: its files join the VAE's, beside each other
            for f in inner.iterdir():
                os.replace(f, stage / f.name)
            inner.rmdir()
    vae_report.out_dir = out
    return BundleReport(target, out, denoiser, vae_report)
