"""Task handlers and the registry that maps task types to them.

A handler takes the payload bytes and returns result bytes. It may be a
`TaskHandler` subclass, an ``async def`` or a plain function; plain functions
run in a thread so they cannot stall the worker's event loop.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["HandlerRegistry", "RegisteredHandler", "TaskHandler", "registry"]

SyncFn = Callable[[bytes], bytes | None]
AsyncFn = Callable[[bytes], Awaitable[bytes | None]]
F = TypeVar("F", bound=Callable[..., Any])


class TaskHandler(ABC):
    """Base class for handlers that keep state between tasks.

    Override `execute`; it may be ``async def`` (runs on the worker's event
    loop) or a plain ``def`` (runs in a thread).
    """

    @abstractmethod
    def execute(self, payload: bytes) -> Any:
        """Run one task and return its result bytes (or None for empty)."""


@dataclass(frozen=True)
class RegisteredHandler:
    """A handler ready to run: its callable and whether it is a coroutine."""

    task_type: str
    fn: Callable[[bytes], Any]
    is_async: bool


class HandlerRegistry:
    """Task type → handler."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._handlers: dict[str, RegisteredHandler] = {}

    def register(self, task_type: str, handler: TaskHandler | SyncFn | AsyncFn) -> None:
        """Register the handler of ``task_type``, replacing any earlier one.

        Raises:
            TypeError: ``handler`` is neither a `TaskHandler` nor a callable.
            ValueError: ``task_type`` is empty.
        """
        if not task_type:
            raise ValueError("task_type: expected a non-empty string, got ''")
        fn: Callable[[bytes], Any]
        if isinstance(handler, TaskHandler):
            fn = handler.execute
        elif callable(handler):
            fn = handler
        else:
            raise TypeError(
                "handler: expected a TaskHandler or a function, "
                f"got {type(handler).__name__}"
            )
        self._handlers[task_type] = RegisteredHandler(
            task_type, fn, inspect.iscoroutinefunction(fn)
        )

    @overload
    def handler(self, task_type: str) -> Callable[[F], F]: ...
    @overload
    def handler(self, task_type: F) -> F: ...

    def handler(self, task_type: str | F) -> Callable[[F], F] | F:
        """Decorator registering a function as the handler of ``task_type``."""
        if callable(task_type):
            fn = task_type
            self.register(fn.__name__, fn)
            return fn

        def decorate(fn: F) -> F:
            self.register(task_type, fn)
            return fn

        return decorate

    def get(self, task_type: str) -> RegisteredHandler | None:
        """The handler of ``task_type``, if any."""
        return self._handlers.get(task_type)

    def task_types(self) -> list[str]:
        """Every registered type, sorted."""
        return sorted(self._handlers)

    def __contains__(self, task_type: object) -> bool:
        return task_type in self._handlers


registry = HandlerRegistry()
"""The registry `tq worker` serves; handler modules register into it."""
