"""How a ``tq`` command ends: its exit codes, and the error that carries one.

Every command ends with one of the `ExitCode` values, so a script can tell an
unreachable broker from a full queue or a failed task without reading text.
Errors reach the user as one line on stderr: the command raises `CliError` (or
lets a `tq.errors` exception through) and the entry point prints its message.
"""

from __future__ import annotations

from enum import IntEnum

from tq.errors import (
    BadRequest,
    ConnectionLost,
    FrameTooLarge,
    InvalidState,
    QueueFull,
    TaskFailed,
    TaskNotFound,
    Timeout,
    TqError,
    Unauthorized,
)

__all__ = ["CliError", "ExitCode", "exit_code_for", "exit_codes_help"]


class ExitCode(IntEnum):
    """The exit codes of every ``tq`` command.

    The values follow common practice where there is one: 2 for usage errors,
    the BSD ``sysexits`` values for an unavailable service (69), an internal
    fault (70), a temporary failure (75) and a permission error (77), and 124
    for a time limit, as ``timeout`` uses.
    """

    OK = 0
    """The command did what was asked."""

    TASK_FAILED = 1
    """An awaited task ended without a result: dead-lettered or cancelled."""

    USAGE = 2
    """A bad option, argument, duration or file; the broker refused arguments."""

    NOT_FOUND = 3
    """No such task (or, for ``dlq`` commands, no such dead letter)."""

    INVALID_STATE = 4
    """The task exists but its state does not allow the operation."""

    UNAVAILABLE = 69
    """The broker could not be reached, or the connection broke."""

    BROKER_ERROR = 70
    """The broker failed: a storage error or a fault in the broker."""

    QUEUE_FULL = 75
    """The broker is at its queue depth threshold; submit again later."""

    UNAUTHORIZED = 77
    """The broker refused the token."""

    TIMED_OUT = 124
    """A wait ran out before the task finished."""

    INTERRUPTED = 130
    """Stopped with Ctrl-C."""


class CliError(Exception):
    """A reason to stop a command, printed as one line, with its exit code.

    Attributes:
        code: The exit code to end with.
    """

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        """Create the error.

        Args:
            message: The one-line reason; it names what was expected and what came.
            code: The exit code to end with.
        """
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        """The one-line reason."""
        return str(self.args[0])


# Checked in order, so a subclass listed before its base wins.
_CODE_OF_ERROR: tuple[tuple[type[TqError], ExitCode], ...] = (
    (TaskFailed, ExitCode.TASK_FAILED),
    (BadRequest, ExitCode.USAGE),
    (FrameTooLarge, ExitCode.USAGE),
    (TaskNotFound, ExitCode.NOT_FOUND),
    (InvalidState, ExitCode.INVALID_STATE),
    (ConnectionLost, ExitCode.UNAVAILABLE),
    (QueueFull, ExitCode.QUEUE_FULL),
    (Unauthorized, ExitCode.UNAUTHORIZED),
    (Timeout, ExitCode.TIMED_OUT),
)


def exit_code_for(error: TqError) -> ExitCode:
    """The exit code a command ends with when ``error`` stops it.

    Args:
        error: An error raised by the client or sent by the broker.

    Returns:
        Its exit code; `ExitCode.BROKER_ERROR` for errors without a closer one.
    """
    for cls, code in _CODE_OF_ERROR:
        if isinstance(error, cls):
            return code
    return ExitCode.BROKER_ERROR


def exit_codes_help() -> str:
    """The exit codes as one paragraph of help text."""
    names = (f"{code.value} {code.name.lower().replace('_', ' ')}" for code in ExitCode)
    return "Exit codes: " + ", ".join(names) + "."
