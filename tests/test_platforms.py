"""Where gvr installs: the dependencies pick a runtime build that exists on each platform.

The marker tests evaluate pyproject.toml's environment markers for each target (offline). The
``index`` test resolves them against the package index as binary wheels
(``benchmarks/check_platforms.py``); it is skipped unless asked for with ``-m index``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _environment(sys_platform: str, machine: str, python: str) -> dict:
    return {
        "sys_platform": sys_platform,
        "platform_machine": machine,
        "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[sys_platform],
        "os_name": "nt" if sys_platform == "win32" else "posix",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


# (sys.platform, platform.machine(), the ONNX Runtime distribution that platform must get)
PLATFORMS = [
    ("linux", "x86_64", "onnxruntime-gpu"),
    ("win32", "AMD64", "onnxruntime-gpu"),
    ("linux", "aarch64", "onnxruntime"),
    ("darwin", "arm64", "onnxruntime"),
    ("darwin", "x86_64", "onnxruntime"),
    ("win32", "ARM64", "onnxruntime"),
]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _dependencies() -> list[Requirement]:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("sys_platform, machine, runtime", PLATFORMS)
def test_each_platform_gets_exactly_one_onnx_runtime_build_that_it_has_wheels_for(sys_platform, machine, runtime, python):
    env = _environment(sys_platform, machine, python)
    chosen = [r.name for r in _dependencies() if r.name.startswith("onnxruntime") and (r.marker is None or r.marker.evaluate(env))]
    assert chosen == [runtime]


@pytest.mark.parametrize("python", PYTHONS)
def test_every_supported_python_gets_one_pyav_and_the_runtimes(python):
    env = _environment("linux", "x86_64", python)
    chosen = [r.name for r in _dependencies() if r.marker is None or r.marker.evaluate(env)]
    assert chosen.count("av") == 1
    assert {"numpy", "onnx", "openvino", "typer", "rich"} <= set(chosen)


@pytest.mark.index
def test_dependencies_resolve_as_wheels_on_the_issue_platforms():
    """macOS arm64 (3.12), Linux aarch64 (3.11), Windows x86_64 (3.11), Linux x86_64 (3.13)."""
    rows = [("macos-arm64", "3.12"), ("linux-aarch64", "3.11"), ("windows-x86_64", "3.11"), ("linux-x86_64", "3.13")]
    for platform, python in rows:
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "check_platforms.py"), "--platform", platform, "--python", python],
            capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("ok"), done.stdout
