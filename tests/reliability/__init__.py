"""Reliability tests (issue 5). A package so this folder's conftest does not shadow tests/gvrcli's
``from conftest import ...`` (two rootless conftest modules would share the name ``conftest``)."""
