"""Project-wide test options: the ``index`` marker (tests that ask the package index) runs only when asked."""

from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "index: asks the package index over the network; run with -m index")


def pytest_collection_modifyitems(config, items):
    if "index" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="asks the package index; run with -m index")
    for item in items:
        if "index" in item.keywords:
            item.add_marker(skip)
