"""``python -m gvrcli`` is the ``gvr`` command."""

from gvrcli.cli import main

main()
