"""The side channel from task handlers to the benchmark: files of int64 stamps.

A handler calls `record` with a number (a time in ns, or a latency in ns);
it is appended as 8 bytes to a file of its own process under the directory
named by ``BENCH_STAMPS``. One ``os.write`` of 8 bytes to an ``O_APPEND`` file
costs about a microsecond and is atomic, so threads need no lock, and nothing
is lost when the worker is killed afterwards. The orchestrator counts stamps by
file size while a workload runs and reads them all at the end.
"""

from __future__ import annotations

import os
import threading
from array import array
from pathlib import Path

ENV = "BENCH_STAMPS"
STAMP_BYTES = 8

_lock = threading.Lock()
_fd = -1
_fd_pid = -1


def _open_for_this_process() -> int:
    # Keyed by pid: forking workers (Celery's prefork, Dramatiq's processes)
    # must not share the parent's file.
    global _fd, _fd_pid  # noqa: PLW0603 - one file per process, opened lazily
    with _lock:
        if _fd_pid != os.getpid():
            folder = os.environ.get(ENV)
            if not folder:
                raise RuntimeError(f"{ENV} is not set: where should stamps go?")
            path = Path(folder) / f"{os.getpid()}-{threading.get_native_id()}.bin"
            _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            _fd_pid = os.getpid()
        return _fd


def record(value: int) -> None:
    """Append one stamp to this process's stamp file."""
    fd = _fd if _fd_pid == os.getpid() else _open_for_this_process()
    os.write(fd, value.to_bytes(STAMP_BYTES, "little", signed=True))


def count(folder: Path) -> int:
    """How many stamps the files in ``folder`` hold so far."""
    return sum(path.stat().st_size for path in folder.glob("*.bin")) // STAMP_BYTES


def read_all(folder: Path) -> list[int]:
    """Every stamp in ``folder``, in no particular order."""
    values: array[int] = array("q")
    for path in folder.glob("*.bin"):
        data = path.read_bytes()
        values.frombytes(data[: len(data) - len(data) % STAMP_BYTES])
    return values.tolist()
