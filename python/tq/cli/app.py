"""The ``tq`` command line and its aliases, assembled from the command modules.

- ``tq``: every command.
- ``tq-broker`` and ``tq-worker``: the broker and the worker alone.
- ``tq-admin``: the commands that talk to a running broker.
"""

from __future__ import annotations

import typer

from tq.cli.base import OneLineErrorsCommand, make_app
from tq.cli.daemons import broker, worker
from tq.cli.dlq import dlq_app
from tq.cli.exits import exit_codes_help
from tq.cli.stats import queue_depth, stats, workers
from tq.cli.submit import submit
from tq.cli.tasks import cancel, list_tasks, status
from tq.cli.top import top

__all__ = [
    "admin_app",
    "admin_main",
    "app",
    "broker_app",
    "broker_main",
    "main",
    "worker_app",
    "worker_main",
]

_ENV_HELP = (
    "Commands that talk to a broker take --broker HOST:PORT (or TQ_BROKER, "
    "default 127.0.0.1:6379), --token (or TQ_TOKEN), --tls (or TQ_TLS) and "
    "--tls-ca FILE (or TQ_TLS_CA), and print JSON with --json."
)


def _add_admin_commands(target: typer.Typer) -> None:
    """Register the commands that talk to a running broker."""
    target.command()(submit)
    target.command()(status)
    target.command("list")(list_tasks)
    target.command()(cancel)
    target.command()(stats)
    target.command()(workers)
    target.command("queue-depth")(queue_depth)
    target.add_typer(dlq_app, name="dlq")
    target.command()(top)


app = make_app(
    "tq",
    "tq: a durable task queue. Run a broker and workers, submit and inspect tasks.\n\n"
    + _ENV_HELP,
    exit_codes_help(),
)
app.command()(broker)
app.command()(worker)
_add_admin_commands(app)

admin_app = make_app(
    "tq-admin",
    "Submit and inspect tasks on a running tq broker.\n\n" + _ENV_HELP,
    exit_codes_help(),
)
_add_admin_commands(admin_app)

broker_app = typer.Typer(
    name="tq-broker", add_completion=False, pretty_exceptions_enable=False
)
broker_app.command(cls=OneLineErrorsCommand)(broker)

worker_app = typer.Typer(
    name="tq-worker", add_completion=False, pretty_exceptions_enable=False
)
worker_app.command(cls=OneLineErrorsCommand)(worker)


def main() -> None:
    """Entry point of ``tq``."""
    app(prog_name="tq")


def admin_main() -> None:
    """Entry point of ``tq-admin``."""
    admin_app(prog_name="tq-admin")


def broker_main() -> None:
    """Entry point of ``tq-broker``."""
    broker_app(prog_name="tq-broker")


def worker_main() -> None:
    """Entry point of ``tq-worker``."""
    worker_app(prog_name="tq-worker")
