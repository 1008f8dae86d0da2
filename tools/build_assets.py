"""Build the runtime's prebuilt default models: ``python tools/build_assets.py``.

Exports the built-in default network (``tiny``, untrained, see the README) at scale 2 and 4 to
``gvrcli/assets/gvr-tiny-x{2,4}.onnx``: dynamic T, H, W, fp32, fused attention. ``gvr upscale``
ships these so it never needs torch. Rerun after changing ``models/``; existing assets are replaced.

A development tool, above every floor: it runs the exporter and writes into the runtime's package,
which the exporter itself never names (imports point down, docs/architecture.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gvrcli.inference.modelfile import ASSETS_DIR, default_model_name

SCALES = (2, 4)


def asset_path(scale: int) -> Path:
    return ASSETS_DIR / default_model_name(scale)


def build_assets(scales=SCALES, verify: bool = True, log=print) -> list:
    from export.targets import export_model

    reports = []
    for scale in scales:
        report = export_model("onnx", asset_path(scale), config="tiny", scale=scale, force=True, verify=verify)
        log(report.summary())
        if report.verify is not None:
            for line in report.verify.lines():
                log("  " + line)
            if not report.verify.ok:
                raise SystemExit(f"verification failed for {report.path}")
        reports.append(report)
    return reports


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, choices=SCALES, action="append", help="only this scale (repeatable)")
    parser.add_argument("--no-verify", action="store_true", help="skip the random-weight verification (halves the time)")
    args = parser.parse_args(argv)
    build_assets(tuple(args.scale or SCALES), verify=not args.no_verify)


if __name__ == "__main__":
    main()
