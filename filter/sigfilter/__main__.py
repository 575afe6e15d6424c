"""``python -m sigfilter`` is the ``sigfilter`` command."""

from .cli import main

main()
