"""The worker runtime: claim tasks, run handlers, report outcomes, heartbeat.

A worker claims as many tasks as it has free slots, with a long poll, so a task
starts the moment the broker has one. Each task runs under its timeout; async
handlers run on the event loop and plain functions in threads. A heartbeat
every heartbeat interval keeps the worker's leases alive and brings back the
tasks whose cancel was requested.

On `stop` (SIGTERM or Ctrl-C in `tq worker`) the worker stops claiming, gives
running tasks the drain grace period to finish, then fails what is left so the
broker retries it elsewhere.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import trio

from tq.client import AsyncClient, WorkerHello, calls
from tq.client.connection import TlsSetting, tls_context
from tq.errors import ConnectionLost, StaleLease, TqError
from tq.worker.acks import AckBatcher, FinishedTask
from tq.worker.context import CurrentTask, enter_task
from tq.worker.outcomes import Reject, Retry
from tq.worker.registry import HandlerRegistry, RegisteredHandler

__all__ = ["ClaimedWork", "Worker", "default_worker_id"]

log = logging.getLogger("tq.worker")

CLAIM_WAIT_S = 1.0
"""How long one claim waits at the broker for a task before asking again.

A claim in flight is always answered, so this is also how long a worker
told to stop while idle may take to do so; an idle worker's claims cost the
broker no write."""

CLAIM_LINGER_S = 0.002
"""How long a claim for a few free slots waits for more slots to free up.

Tasks that finish together free their slots one by one; claiming for each
slot alone would cost the broker one commit per task. Waiting this long, or
until a quarter of the slots are free, gathers them into one claim."""

REPORT_ATTEMPTS = 5
"""How many times an ack or fail is retried across reconnects."""


def default_worker_id() -> str:
    """``host-pid-random``: unique per process, readable in logs."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class ClaimedWork:
    """A task this worker holds, and the scope that runs it.

    The scope ends the handler at the task's timeout, when its cancel is
    requested, or when the worker stops and the drain grace is over; the
    flags tell which of the last two it was.
    """

    task_id: int
    task_type: str
    payload: bytes
    lease_id: int
    attempt: int
    max_retries: int
    timeout_s: float
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    cancel_requested: bool = False
    stopped: bool = False

    @classmethod
    def from_map(cls, raw: dict[str, Any]) -> ClaimedWork:
        """Build from a claimed task's wire map."""
        return cls(
            raw["task_id"],
            raw["task_type"],
            raw["payload"],
            raw["lease_id"],
            raw["attempt"],
            raw["max_retries"],
            raw["timeout_ms"] / 1000,
        )


class Worker:
    """Runs tasks from one broker with the handlers of one registry."""

    def __init__(
        self,
        address: str,
        registry: HandlerRegistry,
        *,
        concurrency: int = 4,
        token: str | None = None,
        tls: TlsSetting = False,
        tls_ca: str | os.PathLike[str] | None = None,
        worker_id: str | None = None,
        drain_grace_s: float = 30.0,
        task_types: tuple[str, ...] | None = None,
    ) -> None:
        """Create a worker.

        Args:
            address: The broker's ``HOST:PORT``.
            registry: Where its handlers are registered.
            concurrency: How many tasks it runs at once.
            token: The broker's auth token, if it has one.
            tls: Speak TLS to the broker, as `AsyncClient` takes it.
            tls_ca: A PEM file of the CAs to trust, as `AsyncClient` takes it.
            worker_id: Its id; a unique one is made up if not given.
            drain_grace_s: How long running tasks get to finish on `stop`.
            task_types: Claim only these types; all registered ones if None.

        Raises:
            ValueError: ``concurrency`` is below 1, or ``tls_ca`` cannot be read.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency: expected at least 1, got {concurrency}")
        self.address = address
        self.registry = registry
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.drain_grace_s = drain_grace_s
        self.task_types = tuple(task_types or registry.task_types())
        self._token = token
        # Built now, so that a bad CA file stops the worker before it starts.
        self._tls = tls_context(tls, tls_ca) or False
        self._running: dict[int, ClaimedWork] = {}
        # Tasks whose handler is done and whose ack or fail is on its way: the
        # worker still holds their leases, so heartbeats must name them.
        self._reporting: set[int] = set()
        self._slot_freed = trio.Event()
        self._stopping = trio.Event()
        self._threads = trio.CapacityLimiter(concurrency)
        self.completed = 0
        self.failed = 0

    @property
    def running(self) -> int:
        """How many tasks run right now."""
        return len(self._running)

    def stop(self) -> None:
        """Stop claiming and drain (see the module docstring)."""
        self._stopping.set()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Work until `stop` is called and the drain is over."""
        hello = WorkerHello(self.worker_id, self.concurrency, self.task_types)
        client = AsyncClient(
            self.address, token=self._token, tls=self._tls, worker=hello
        )
        async with client:
            log.info(
                "worker started worker_id=%s broker=%s concurrency=%d types=%s",
                self.worker_id,
                self.address,
                self.concurrency,
                ",".join(self.task_types),
            )
            task_status.started()
            async with trio.open_nursery() as services:
                services.start_soon(self._heartbeat_loop, client)
                # Reports outlive their task's slot: the nursery closes only
                # once every ack and fail has been answered.
                async with trio.open_nursery() as reports:
                    acks = AckBatcher(
                        client,
                        reports,
                        worker_id=self.worker_id,
                        max_batch=client.server_info.get("max_batch", 1000),
                        on_reported=self._acked,
                    )
                    async with trio.open_nursery() as tasks:
                        await self._claim_loop(client, tasks, _Reporter(acks, reports))
                        await self._drain()
                services.cancel_scope.cancel()
        log.info(
            "worker stopped worker_id=%s completed=%d failed=%d",
            self.worker_id,
            self.completed,
            self.failed,
        )

    # Claiming

    async def _claim_loop(
        self, client: AsyncClient, tasks: trio.Nursery, reports: _Reporter
    ) -> None:
        with trio.CancelScope() as scope:
            tasks.start_soon(_cancel_on, self._stopping, scope)
            # Checked on every turn: a claim is shielded, so a turn that only
            # claims never reaches a checkpoint where the cancel could land.
            while not self._stopping.is_set():
                await self._wait_for_free_slots()
                free = self.concurrency - len(self._running)
                for raw in await self._claim(client, free):
                    work = ClaimedWork.from_map(raw)
                    self._running[work.task_id] = work
                    tasks.start_soon(self._run_task, client, work, reports)

    async def _wait_for_free_slots(self) -> None:
        """Wait for a free slot, then briefly for more (see `CLAIM_LINGER_S`)."""
        while len(self._running) == self.concurrency:
            await self._slot_freed.wait()
            self._slot_freed = trio.Event()
        enough = self.concurrency - max(1, self.concurrency // 4)
        with trio.move_on_after(CLAIM_LINGER_S):
            while len(self._running) > enough:
                await self._slot_freed.wait()
                self._slot_freed = trio.Event()

    async def _claim(self, client: AsyncClient, free: int) -> list[dict[str, Any]]:
        # Shielded: once a claim is sent, its answer must be taken, or the broker
        # would lease tasks to this worker that it never runs.
        tasks: list[dict[str, Any]] = []
        with trio.CancelScope(shield=True):
            try:
                tasks = await client.call(
                    calls.claim(free, self.task_types, CLAIM_WAIT_S)
                )
            except ConnectionLost as exc:
                log.warning("claim failed, reconnecting: %s", exc)
        return tasks

    # Running

    async def _run_task(
        self, client: AsyncClient, work: ClaimedWork, reports: _Reporter
    ) -> None:
        try:
            outcome = await self._execute(work)
        finally:
            # The slot is free once the handler is done: the report travels
            # on its own, so the next claim does not wait for the broker to
            # store this outcome.
            self._running.pop(work.task_id, None)
            self._slot_freed.set()
        self._reporting.add(work.task_id)
        if isinstance(outcome, bytes):
            reports.acks.add(
                FinishedTask(
                    work.task_id, work.task_type, work.lease_id, work.attempt, outcome
                )
            )
        else:
            reports.nursery.start_soon(self._report, client, work, outcome)

    async def _execute(self, work: ClaimedWork) -> bytes | calls.Call[str]:
        """Run the handler: its result to ack, or the fail to send."""
        handler = self.registry.get(work.task_type)
        if handler is None:
            error = f"no handler for type {work.task_type!r} on {self.worker_id}"
            return calls.fail(work.task_id, work.lease_id, error)
        work.scope.relative_deadline = work.timeout_s
        # This trio task runs only this handler: nothing to reset after it.
        enter_task(
            CurrentTask(
                work.task_id,
                work.task_type,
                work.attempt,
                work.max_retries,
                work.lease_id,
                self.worker_id,
            )
        )
        with work.scope:
            try:
                result = await _call_handler(handler, work.payload, self._threads)
                return _as_bytes(result)
            except Exception as exc:
                return _failure(work, exc)
        if work.cancel_requested or work.stopped:
            reason = (
                "cancel requested" if work.cancel_requested else "worker stopped first"
            )
            return calls.fail(work.task_id, work.lease_id, reason, retry_delay_s=0.0)
        error = f"timed out after {work.timeout_s:g}s"
        return calls.fail(work.task_id, work.lease_id, error)

    def _acked(self, task: FinishedTask, completed: bool) -> None:
        self._reporting.discard(task.task_id)
        if completed:
            self.completed += 1
            log.debug(
                "task completed task_id=%d type=%s attempt=%d worker_id=%s",
                task.task_id,
                task.task_type,
                task.attempt,
                self.worker_id,
            )

    async def _report(
        self, client: AsyncClient, work: ClaimedWork, outcome: calls.Call[str]
    ) -> None:
        """Send a fail, across reconnects; a stale lease ends it."""
        try:
            await self._send_report(client, work, outcome)
        finally:
            self._reporting.discard(work.task_id)

    async def _send_report(
        self, client: AsyncClient, work: ClaimedWork, outcome: calls.Call[str]
    ) -> None:
        with trio.CancelScope(shield=True):
            for attempt in range(1, REPORT_ATTEMPTS + 1):
                try:
                    await client.call(outcome)
                except StaleLease as exc:
                    log.warning(
                        "outcome discarded task_id=%d type=%s attempt=%d "
                        "worker_id=%s: %s",
                        work.task_id,
                        work.task_type,
                        work.attempt,
                        self.worker_id,
                        exc,
                    )
                    return
                except ConnectionLost as exc:
                    log.warning("report failed (try %d): %s", attempt, exc)
                    continue
                except TqError as exc:
                    log.error("report refused task_id=%d: %s", work.task_id, exc)
                    return
                self.failed += 1
                log.debug(
                    "task failed task_id=%d type=%s attempt=%d worker_id=%s",
                    work.task_id,
                    work.task_type,
                    work.attempt,
                    self.worker_id,
                )
                return

    # Heartbeats and drain

    async def _heartbeat_loop(self, client: AsyncClient) -> None:
        interval_s = client.server_info.get("heartbeat_interval_ms", 15_000) / 1000
        while True:
            await trio.sleep(interval_s)
            try:
                held = [*self._running, *self._reporting]
                cancel = await client.call(calls.heartbeat(held))
            except ConnectionLost as exc:
                log.warning("heartbeat failed, retrying next interval: %s", exc)
                continue
            for task_id in cancel:
                work = self._running.get(task_id)
                if work is not None and not work.cancel_requested:
                    log.info(
                        "task cancel requested task_id=%d worker_id=%s",
                        task_id,
                        self.worker_id,
                    )
                    work.cancel_requested = True
                    work.scope.cancel()

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info(
            "draining worker_id=%s running=%d grace_s=%g",
            self.worker_id,
            len(self._running),
            self.drain_grace_s,
        )
        with trio.move_on_after(self.drain_grace_s):
            while self._running:
                await self._slot_freed.wait()
                self._slot_freed = trio.Event()
        for work in list(self._running.values()):
            work.stopped = True
            work.scope.cancel()


@dataclass(frozen=True)
class _Reporter:
    """Where finished tasks report: acks gathered, fails one by one."""

    acks: AckBatcher
    nursery: trio.Nursery


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _call_handler(
    handler: RegisteredHandler, payload: bytes, threads: trio.CapacityLimiter
) -> Any:
    if handler.is_async:
        return await handler.fn(payload)
    # abandon_on_cancel: a timed-out thread cannot be stopped, only left behind.
    return await trio.to_thread.run_sync(
        handler.fn, payload, abandon_on_cancel=True, limiter=threads
    )


def _failure(work: ClaimedWork, exc: Exception) -> calls.Call[str]:
    """The fail to send for a handler's exception: a retry, a reject or an error."""
    if isinstance(exc, Retry):
        return calls.fail(
            work.task_id, work.lease_id, exc.reason, retry_delay_s=exc.delay_s
        )
    if isinstance(exc, Reject):
        return calls.fail(work.task_id, work.lease_id, exc.reason, reject=True)
    error = f"{type(exc).__name__}: {exc}"
    return calls.fail(work.task_id, work.lease_id, error)


def _as_bytes(result: Any) -> bytes:
    if result is None:
        return b""
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result)
    if isinstance(result, str):
        return result.encode()
    raise TypeError(
        f"handler result: expected bytes, str or None, got {type(result).__name__}"
    )
