"""A trial of the latent cascade without downloads: small stand-ins for the real weights.

The real cascade needs a Wan2.1 VAE (about 500 MB) and a trained latent SimpleGVR (none is
public), so without this a newcomer cannot see ``gvr export --vae`` and ``gvr upscale --model
BUNDLE/`` work. ``make_trial`` writes, into one folder, files of the real formats and
architectures, named for what they are:

- ``random-vae.safetensors``: a Wan2.1-architecture VAE with seeded random weights, small
  (``base_dim`` 16, one residual block per level: the size the tests use), in ``save_vae``'s format;
- ``untrained-latent-sr.safetensors``: a latent SimpleGVR (codec ``wan2.1``, 2x2 patches, x2) with
  the untrained default's initialisation, so it upsamples the latent bilinearly, and small;
- ``latents/sample.safetensors``: a latent input as the runtime's latent reader takes it (tensor
  ``latents`` (C, T, h, w), metadata ``fps``), seeded standard-normal values: Wan pipelines'
  latents are normalised per channel to about N(0, 1), which is what the bundle's VAE expects.

The decoded output is noise-like video (the VAE's weights are random); the point is the path.
Everything is written atomically into the folder (``export.outputs.staged_into``), all or none; an
existing file is refused unless ``force``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VAE_FILE = "random-vae.safetensors"
SR_FILE = "untrained-latent-sr.safetensors"
LATENTS_FILE = "latents/sample.safetensors"

# The tests' small VAE (tests/conftest.py SMALL_VAE): its graphs export in about a minute on 2 cores.
TRIAL_VAE = dict(base_dim=16, num_res_blocks=1)
# A narrow, shallow denoiser in the Wan2.1 latent space: windows of 3x4 tokens fit the sample's
# 24x32 HR latent (12x16 tokens with 2x2 patches), a temporal unit of 3 latent frames its 5.
TRIAL_SR = dict(codec="wan2.1", patch=2, scale=2, depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3)
# (T, h, w) of the sample latent: 5 latent frames = 17 frames of 128x96 pixels, upscaled to 256x192.
LATENT_SHAPE = (5, 12, 16)
FPS = 16  # Wan2.1's frame rate


@dataclass
class TrialReport:
    folder: Path
    files: list[Path]

    def summary(self) -> str:
        names = ", ".join(str(f.relative_to(self.folder)) for f in self.files)
        return f"wrote {self.folder}/: {names} (random and untrained weights: a trial of the path, not of the quality)"


def make_trial(folder: str | Path, force: bool = False, seed: int = 0) -> TrialReport:
    """Write the trial's VAE, latent SimpleGVR and sample latent into ``folder``."""
    import numpy as np
    from safetensors.numpy import save_file

    import models
    from export.outputs import staged_into

    folder = Path(folder)
    vae = models.build_vae("wan2.1", seed=seed, **TRIAL_VAE)
    sr = models.build_model("tiny", **TRIAL_SR)  # the untrained default's init: bilinear in latent space
    channels = sr.config.latent_channels
    latents = np.random.default_rng(seed).standard_normal((channels, *LATENT_SHAPE), dtype=np.float32)
    with staged_into(folder, force) as stage:
        models.save_vae(vae, stage / VAE_FILE)
        models.save_model(sr, stage / SR_FILE)
        (stage / LATENTS_FILE).parent.mkdir()
        save_file({"latents": latents}, str(stage / LATENTS_FILE), metadata={"fps": str(FPS)})
    return TrialReport(folder, [folder / VAE_FILE, folder / SR_FILE, folder / LATENTS_FILE])
