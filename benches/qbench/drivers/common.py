"""What every driver shares: the ready/go/result protocol and the schedules.

A driver prints ``{"ready": {...}}`` once it is connected and warmed up, reads
one line (``go``) from stdin, measures, and prints ``{"result": {...}}``; an
exception is printed as ``{"error": "..."}``. Only the standard library is used
here: drivers run in tq's virtual environment and in the peers' alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PAD = "x" * 256
"""The peers' payload: a 256-character string argument."""

PAYLOAD = bytes(range(256))
"""tq's payload: 256 bytes."""

SEND_NS_BYTES = 8


def say(key: str, value: dict[str, Any]) -> None:
    """Print one protocol message."""
    sys.stdout.write(json.dumps({key: value}) + "\n")
    sys.stdout.flush()


def ready_then_wait(**info: Any) -> None:
    """Say ready, then block until the orchestrator says go."""
    say("ready", info)
    sys.stdin.readline()


def main_guard(
    run: Callable[[argparse.Namespace], dict[str, Any]],
) -> Callable[[argparse.Namespace], None]:
    """Wrap a driver's entry point so any failure is reported, not swallowed."""

    def wrapped(args: argparse.Namespace) -> None:
        try:
            say("result", run(args))
        except Exception as exc:  # reported to the orchestrator
            traceback.print_exc()
            say("error", {"message": f"{type(exc).__name__}: {exc}"})
            raise SystemExit(1) from exc

    return wrapped


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options every workload subcommand takes."""
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--mode", default="seq")


@dataclass
class Counter:
    """Submits counted by many threads (or trio tasks)."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        """Count ``n`` more."""
        with self.lock:
            self.count += n


@dataclass
class Schedule:
    """Open-loop send slots: slot i is due at ``start + i / rate`` (monotonic).

    Senders take slots in order; a slot taken after ``stop_at`` is not sent,
    so a system that falls behind is cut off instead of running on for ever.
    """

    rate: float
    duration_s: float
    start: float = 0.0
    stop_at: float = 0.0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, cutoff_factor: float = 2.0) -> None:
        """Start the clock a moment from now."""
        self.start = time.monotonic() + 0.05
        self.stop_at = self.start + self.duration_s * cutoff_factor

    @property
    def slots(self) -> int:
        """How many slots the offered rate asks for."""
        return round(self.rate * self.duration_s)

    def take(self) -> float | None:
        """The due time of the next slot, or None when the run is over."""
        with self._lock:
            index = self._next
            self._next += 1
        if index >= self.slots or time.monotonic() > self.stop_at:
            return None
        return self.start + index / self.rate


@dataclass
class LatencyLog:
    """What the senders of one driver saw."""

    send_ns: list[int] = field(default_factory=list)
    ack_ns: list[int] = field(default_factory=list)
    complete_ns: list[int] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sent_ns: int, acked_ns: int, done_ns: int) -> None:
        """One task: when it was sent, when its submit call returned (the
        system acknowledged it) and when the client learned it finished."""
        with self.lock:
            self.send_ns.append(sent_ns)
            self.ack_ns.append(acked_ns - sent_ns)
            self.complete_ns.append(done_ns - sent_ns)

    def failed(self) -> None:
        """One task that raised or timed out."""
        with self.lock:
            self.errors += 1

    def summary(self, offered: int) -> dict[str, Any]:
        """The driver's result message."""
        return {
            "offered": offered,
            "sent": len(self.send_ns),
            "first_send_ns": min(self.send_ns, default=0),
            "last_send_ns": max(self.send_ns, default=0),
            "ack_ns": self.ack_ns,
            "complete_ns": self.complete_ns,
            "errors": self.errors,
        }


def timed_loop(duration_s: float, step: Callable[[], int]) -> dict[str, Any]:
    """Call ``step`` (which returns tasks submitted) until ``duration_s`` passes."""
    count = 0
    start = time.monotonic()
    end = start + duration_s
    while time.monotonic() < end:
        count += step()
    return {"count": count, "seconds": time.monotonic() - start}


def run_threads(steps: list[Callable[[], int]], duration_s: float) -> dict[str, Any]:
    """One thread per step, each looping its step for ``duration_s``."""
    counter = Counter()
    start = time.monotonic()

    def loop(step: Callable[[], int]) -> None:
        counter.add(timed_loop(duration_s, step)["count"])

    threads = [threading.Thread(target=loop, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"count": counter.count, "seconds": time.monotonic() - start}
