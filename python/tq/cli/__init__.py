"""The ``tq`` command line: the broker, workers, task commands and ``tq top``.

Each command lives in a module named for its role (``daemons``, ``submit``,
``tasks``, ``stats``, ``dlq``, ``top``); ``dashboard`` renders ``tq top``'s
screen from the broker's figures, and ``exits`` defines every exit code.
"""

from tq.cli.app import (
    admin_app,
    admin_main,
    app,
    broker_app,
    broker_main,
    main,
    worker_app,
    worker_main,
)
from tq.cli.exits import ExitCode

__all__ = [
    "ExitCode",
    "admin_app",
    "admin_main",
    "app",
    "broker_app",
    "broker_main",
    "main",
    "worker_app",
    "worker_main",
]
