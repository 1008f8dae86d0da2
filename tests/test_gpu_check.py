"""``benchmarks/gpu_check.py`` on a machine without a GPU: it says so and exits 75 at once,
before importing torch (the check itself needs a GPU; its figures come from a GPU machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_without_a_gpu_says_so_and_exits_75_without_importing_torch(tmp_path):
    from gvrcli.inference.backends import gpu_present

    if gpu_present():
        pytest.skip("a GPU is present: run the check itself")
    # torch made unimportable: the no-GPU exit must come before it.
    code = "import sys, runpy; sys.modules['torch'] = None; sys.argv = ['gpu_check.py', '--out', sys.argv[1]]; runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 75, done.stderr
    assert done.stdout.startswith("gpu_check: no GPU:") and "nothing was measured" in done.stdout
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
