"""The exceptions tq raises, each with the stable wire code it travels under.

Every error the engine reports is mapped once, at the boundary of the Rust
extension, to one of these classes; the broker sends the ``code`` over the wire
and the client raises the same class again on the other side.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ConnectionLost",
    "EngineClosed",
    "FrameTooLarge",
    "InvalidState",
    "QueueFull",
    "StaleLease",
    "StorageError",
    "StoreLocked",
    "TaskFailed",
    "TaskNotFound",
    "Timeout",
    "TlsError",
    "TlsRequired",
    "TooManyConnections",
    "TqError",
    "Unauthorized",
    "error_for_code",
]


class TqError(Exception):
    """Base class of every tq error.

    Attributes:
        code: The stable error code sent on the wire, such as ``NOT_FOUND``.
    """

    code: ClassVar[str] = "INTERNAL"

    @property
    def message(self) -> str:
        """The human-readable reason, as given when the error was raised."""
        return str(self.args[0]) if self.args else self.code


class BadRequest(TqError):
    """An argument had the wrong type, range or shape."""

    code = "BAD_REQUEST"


class TaskNotFound(TqError):
    """No task with the given id exists (it never did, or it was purged)."""

    code = "NOT_FOUND"


class StaleLease(TqError):
    """An ack, fail or heartbeat carried a lease id that is no longer current.

    The lease expired or its worker was declared lost, and the task has moved on;
    the request changed nothing.
    """

    code = "STALE_LEASE"


class InvalidState(TqError):
    """The task exists but is not in a state that allows the operation."""

    code = "INVALID_STATE"


class StorageError(TqError):
    """The store failed to read or durably write; nothing was acknowledged."""

    code = "STORAGE"


class StoreLocked(StorageError):
    """The data directory is already open, in this process or another."""

    code = "STORE_LOCKED"


class EngineClosed(TqError):
    """The engine was closed; open the data directory again to go on."""

    code = "CLOSED"


class QueueFull(TqError):
    """The broker holds as many pending tasks as it may; submit again later.

    Claims, acks and reads go on; only new submits are refused.
    """

    code = "QUEUE_FULL"


class Unauthorized(TqError):
    """The token was missing or wrong, or a request came before the hello."""

    code = "UNAUTHORIZED"


class FrameTooLarge(TqError):
    """A frame announced a body over the receiver's limit."""

    code = "FRAME_TOO_LARGE"


class Timeout(TqError):
    """The broker did not have an answer within the time asked for."""

    code = "TIMEOUT"


class ConnectionLost(TqError):
    """The connection to the broker broke and could not be made again in time.

    A request in flight when it broke may or may not have taken effect.
    """

    code = "CONNECTION_LOST"


class TlsError(ConnectionLost):
    """TLS could not be set up with the broker, and retrying will not help.

    The broker's certificate is not trusted or does not name the host it was
    reached at, or one side speaks TLS and the other does not. Raised by the
    client; it never travels the wire.
    """

    code = "TLS"


class TlsRequired(TlsError):
    """The broker's port serves TLS, and the client spoke plain frames to it.

    The broker says so in one plain frame before it closes the connection.
    """

    code = "TLS_REQUIRED"


class TooManyConnections(ConnectionLost):
    """The broker is at ``max_connections`` and closed the connection at once."""

    code = "TOO_MANY_CONNECTIONS"


class TaskFailed(TqError):
    """The awaited task ended without a result: dead-lettered or cancelled.

    Attributes:
        task_id: The task.
        state: Its final state.
        last_error: The error of its last attempt, if any.
    """

    code = "TASK_FAILED"

    def __init__(
        self,
        message: str,
        *,
        task_id: int = 0,
        state: str = "",
        last_error: str | None = None,
    ) -> None:
        """Create the error; the keywords describe the task when known."""
        super().__init__(message)
        self.task_id = task_id
        self.state = state
        self.last_error = last_error


_BY_CODE: dict[str, type[TqError]] = {
    cls.code: cls
    for cls in (
        TqError,
        BadRequest,
        TaskNotFound,
        StaleLease,
        InvalidState,
        StorageError,
        StoreLocked,
        EngineClosed,
        QueueFull,
        Unauthorized,
        FrameTooLarge,
        Timeout,
        ConnectionLost,
        TlsError,
        TlsRequired,
        TooManyConnections,
        TaskFailed,
    )
}


def error_for_code(code: str, message: str) -> TqError:
    """Build the exception that a wire error code stands for.

    Args:
        code: The stable code, such as ``NOT_FOUND``.
        message: The reason to carry.

    Returns:
        An instance of the matching class, or of `TqError` for an unknown code.
    """
    return _BY_CODE.get(code, TqError)(message)
