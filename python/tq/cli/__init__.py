"""The ``tq`` command line."""

from tq.cli.app import app, main

__all__ = ["app", "main"]
