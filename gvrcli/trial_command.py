"""``gvr trial-cascade DIR``: the thin command over ``export.trial.make_trial``.

It writes small stand-ins (a random-weight VAE, an untrained latent SimpleGVR, a sample latent) so
the latent cascade (``gvr export --vae``, ``gvr upscale --model BUNDLE/``) can be tried without
downloads. Making weights needs torch, so like ``gvr export`` it imports the export side inside the
command only. Exit codes: 0 written · 2 the export extra missing, an existing file without
``--force``, an unwritable folder (nothing written).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gvrcli.errors import exit_with_error as _fail
from gvrcli.export_command import missing_export_modules


def trial_cascade_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder to write the trial's files into (made if missing)."),
    force: bool = typer.Option(False, "--force", help="Replace the trial's files if they exist."),
) -> None:
    """Write a random-weight VAE, an untrained latent SimpleGVR and a sample latent input: the latent cascade without downloads."""
    missing = missing_export_modules()
    if missing:
        _fail(f"gvr trial-cascade needs the export extra, which is not installed (missing: {', '.join(missing)}): "
              "pip install -e '.[export]' (from the gvr checkout)")
    from export import ExportError
    from export.trial import make_trial

    try:
        report = make_trial(folder, force=force)
    except ExportError as e:
        _fail(str(e), e.exit_code)
    typer.echo(report.summary())
    typer.echo("next:")
    typer.echo(f"  gvr export --weights {report.files[1]} --vae {report.files[0]} --target openvino --out {folder / 'bundle'}/")
    typer.echo(f"  gvr upscale --model {folder / 'bundle'}/ {report.files[2].parent}/ out/")
