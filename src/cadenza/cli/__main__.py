"""``python -m cadenza.cli``: the same as the ``cadenza`` command."""

from cadenza.cli import main

main()
