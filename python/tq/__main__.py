"""``python -m tq`` runs the ``tq`` command line."""

from tq.cli import main

main()
