"""Does `pip install gvr` resolve on every platform we support? Asks the package index.

For each platform and Python version, resolves the project's dependencies as binary wheels only
(no sdist builds: an edge box or a Mac has no compiler toolchain for ONNX Runtime or OpenVINO) and
prints one line: the versions of the runtimes it would get, or why it cannot resolve.

The resolver is uv's (`uv pip compile --python-platform`), not pip's: pip's `--platform` picks
wheels for the target but evaluates environment markers (`sys_platform`, `platform_machine`,
`python_version`) against the interpreter running it, so it cannot check the per-platform choice of
onnxruntime-gpu vs onnxruntime that this project makes (pypa/pip#11664). uv evaluates them for the
target. `pip install uv` (it is in the dev extra) and network access to the index are needed.

    python benchmarks/check_platforms.py                   # runtime dependencies, every platform
    python benchmarks/check_platforms.py --extra export    # also the export extra (torch)

Exit 0 when every row resolves, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # requires-python >= 3.10; the versions we support


@dataclass(frozen=True)
class Platform:
    name: str
    uv_platform: str  # uv's --python-platform
    note: str  # the floor that target implies
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the resolver


PLATFORMS = (
    # manylinux_2_28: RHEL/Alma/Rocky 8+, Debian 10+, Ubuntu 18.10+ (ONNX Runtime's own floor).
    Platform("linux-x86_64", "x86_64-manylinux_2_28", "glibc >= 2.28"),
    # manylinux_2_35: OpenVINO 2026's aarch64 wheels need it (Ubuntu 22.04+, Debian 12+).
    Platform("linux-aarch64", "aarch64-manylinux_2_35", "glibc >= 2.35"),
    # macOS 14 on Apple Silicon: current ONNX Runtime and PyAV wheels target it.
    Platform("macos-arm64", "aarch64-apple-darwin", "macOS >= 14", (("MACOSX_DEPLOYMENT_TARGET", "14.0"),)),
    Platform("windows-x86_64", "x86_64-pc-windows-msvc", "Windows 10+"),
)

# The packages whose versions a row reports: the runtimes and the media library.
REPORTED = ("onnxruntime-gpu", "onnxruntime", "openvino", "av", "numpy", "torch")


def resolve(platform: Platform, python: str, extras: list[str], uv: str) -> tuple[bool, str]:
    """(resolved?, one-line summary) for one platform and Python version."""
    cmd = [uv, "pip", "compile", str(ROOT / "pyproject.toml"), "--python-platform", platform.uv_platform,
           "--python-version", python, "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet"]
    for extra in extras:
        cmd += ["--extra", extra]
    env = {**os.environ, **dict(platform.env)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        lines = [l.strip() for l in done.stderr.splitlines() if l.strip()]
        cause = next((l for l in lines if l.startswith(("cause:", "hint:"))), lines[-1] if lines else "no output")
        return False, cause
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", done.stdout, flags=re.M))
    parts = [f"{name} {pins[name]}" for name in REPORTED if name in pins]
    return True, ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="also resolve this extra (export, dev)")
    parser.add_argument("--python", action="append", help=f"Python versions (default {' '.join(PYTHONS)})")
    parser.add_argument("--platform", action="append", choices=[p.name for p in PLATFORMS])
    args = parser.parse_args(argv)
    uv = shutil.which("uv")
    if uv is None:
        print("check_platforms: uv is not installed (pip install uv, or pip install -e '.[dev]')", file=sys.stderr)
        return 2
    pythons = args.python or list(PYTHONS)
    platforms = [p for p in PLATFORMS if not args.platform or p.name in args.platform]
    failed = 0
    for platform in platforms:
        for python in pythons:
            ok, summary = resolve(platform, python, args.extra, uv)
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {platform.name:<15} py{python:<5} ({platform.note}): {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
