"""In-process benchmark of tq's engine, `tq._core`, with no network in the way.

It prints three things in one run:

1. The machine: CPU model, cores, Python, the disk under the data root, and how
   long a plain ``fdatasync`` of a 256 B append takes there, so the fsync-on
   figures below can be judged against what the disk can do.
2. Throughput of submit, claim and ack, with fsync on and off and with group
   commits of 1, 100 and 1,000 operations per `Engine.commit` call. Each cell
   opens a fresh data directory and commits batches until the time spent inside
   `Engine.commit` reaches the cell's budget (1.5 s, or 0.25 s with
   ``--quick``); ops/s and µs/op are taken over that time only. Building the
   operation objects, and the submits and claims that stock a claim or ack cell
   with tasks, happen outside the timed calls. A claim batch is N separate
   ``Claim(max_tasks=1)`` operations, as when the broker groups N workers' claim
   requests into one commit.
3. Memory and recovery with 1,000,000 pending tasks (100,000 with ``--quick``).
   A spawned child process fills a fresh store with ``submit_many`` in batches
   of 1,000 (fsync off, to fill quickly) and reads its own VmRSS from
   /proc/self/status, so the figure is the engine's plus a bare interpreter's,
   with nothing of the parent's in it. A second, fresh child reopens the store
   (every index is rebuilt), checks that ``counts()`` shows every task pending,
   reads its RSS and times the first claim. Bars from SPEC §5: RSS < 300 MB and
   back to serving in < 5 s.

Payloads are 256 random (incompressible) bytes. All timings use
`time.perf_counter`. Run from the repository with the extension installed::

    .venv/bin/python benches/engine_bench.py [--quick] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tq._core import Ack, Claim, Engine, NewTask, Submit
from tq._core import __version__ as core_version

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tq._core import Op

    BatchMaker = Callable[[], Sequence[Op]]

PAYLOAD = os.urandom(256)
TASK_TYPE = "bench"
WORKER_ID = "bench-worker"
GROUP_SIZES = (1, 100, 1_000)
FILL_BATCH = 1_000
RESTOCK_TASKS = 10_000
CELL_SECONDS = 1.5
QUICK_CELL_SECONDS = 0.25
FULL_TASKS = 1_000_000
QUICK_TASKS = 100_000
FSYNC_PROBE_WRITES = 200
RSS_BAR_MB = 300.0
SERVING_BAR_S = 5.0
RSS_BAR = f"< {RSS_BAR_MB:.0f} MB"
TIME_BAR = f"< {SERVING_BAR_S:g} s"
MB = 1_000_000
CellTime = tuple[int, float]
"""Operations done and seconds spent inside `Engine.commit`."""


@dataclass(frozen=True)
class Settings:
    """What one run measures, from the command line."""

    data_root: Path
    cell_seconds: float
    tasks: int
    quick: bool


@dataclass(frozen=True)
class CellResult:
    """One throughput cell: an operation, a durability mode and a group size."""

    op: str
    fsync: bool
    group: int
    ops: int
    seconds: float

    @property
    def ops_per_s(self) -> float:
        """Operations per second of time spent inside `Engine.commit`."""
        return self.ops / self.seconds

    @property
    def us_per_op(self) -> float:
        """Microseconds of `Engine.commit` time per operation."""
        return self.seconds * 1e6 / self.ops


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo, or the platform's guess."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mount_of(path: Path) -> tuple[str, str, str]:
    """Return the (device, mount point, file system) that ``path`` lives on."""
    target = str(path.resolve())
    best = ("unknown", "/", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount_point, fs_type = line.split()[:3]
        mount_point = mount_point.replace("\\040", " ")
        inside = target == mount_point or target.startswith(
            mount_point.rstrip("/") + "/"
        )
        if inside and len(mount_point) >= len(best[1]):
            best = (device, mount_point, fs_type)
    return best


def rotational(device: str) -> str:
    """Return a block device's (or its disk's) rotational flag, else ``?``."""
    block = Path("/sys/class/block") / Path(device).name
    if not block.exists():
        return "?"
    disk = block.resolve()
    for candidate in (disk, disk.parent):
        flag = candidate / "queue" / "rotational"
        if flag.exists():
            return flag.read_text().strip()
    return "?"


def fdatasync_probe_us(
    data_root: Path, writes: int, *, preallocated: bool
) -> tuple[float, float]:
    """Time writing 256 B and ``fdatasync``-ing it; return p50 and p99 in µs.

    Into a file written out and synced beforehand, each sync flushes data only
    (the cheapest real fsync, as into a recycled WAL); into an empty file, each
    write appends and the sync also commits the new size.
    """
    samples: list[float] = []
    size = len(PAYLOAD)
    with tempfile.TemporaryDirectory(dir=data_root, prefix="tq-fsync-") as tmp:
        fd = os.open(Path(tmp) / "probe", os.O_RDWR | os.O_CREAT)
        try:
            if preallocated:
                os.write(fd, bytes(size * writes))
                os.fsync(fd)
            for i in range(writes):
                start = time.perf_counter()
                os.pwrite(fd, PAYLOAD, i * size)
                os.fdatasync(fd)
                samples.append((time.perf_counter() - start) * 1e6)
        finally:
            os.close(fd)
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def print_disk_probe(data_root: Path, writes: int) -> None:
    """Print what a real fdatasync costs on the data root's disk."""
    for label, preallocated in (("overwrite", True), ("append", False)):
        p50, p99 = fdatasync_probe_us(data_root, writes, preallocated=preallocated)
        print(
            f"fsync:     256 B {label} + fdatasync: p50 {p50:,.0f} µs,"
            f" p99 {p99:,.0f} µs ({writes} writes)"
        )


def print_machine(settings: Settings) -> None:
    """Print what the figures were measured on."""
    device, mount_point, fs_type = mount_of(settings.data_root)
    print(f"tq engine bench (tq._core {core_version})")
    print(f"cpu:       {cpu_model()}, {os.cpu_count()} cores")
    print(f"python:    {platform.python_version()} on {platform.platform()}")
    print(
        f"data root: {settings.data_root} on {device} ({fs_type} at {mount_point},"
        f" kernel's rotational flag: {rotational(device)})"
    )
    writes = FSYNC_PROBE_WRITES // 4 if settings.quick else FSYNC_PROBE_WRITES
    print_disk_probe(settings.data_root, writes)
    print(f"mode:      {'quick' if settings.quick else 'full'}")


# ---------------------------------------------------------------- engine helpers


def new_task() -> NewTask:
    """Make a benchmark task with the 256 B payload and default limits."""
    return NewTask(TASK_TYPE, PAYLOAD)


def fill(engine: Engine, count: int) -> None:
    """Submit ``count`` tasks with `Engine.submit_many`, 1,000 per call."""
    batch = [new_task() for _ in range(FILL_BATCH)]
    for start in range(0, count, FILL_BATCH):
        engine.submit_many(batch[: min(FILL_BATCH, count - start)])


def claim_leases(engine: Engine, count: int) -> list[tuple[int, int]]:
    """Submit and claim ``count`` tasks; return their (task id, lease id) pairs."""
    fill(engine, count)
    leases: list[tuple[int, int]] = []
    while len(leases) < count:
        claimed = engine.claim(WORKER_ID, min(FILL_BATCH, count - len(leases)))
        if not claimed:
            msg = f"claim found no pending task after {len(leases)} of {count}"
            raise RuntimeError(msg)
        leases.extend((task.task_id, task.lease_id) for task in claimed)
    return leases


def check_results(results: list[object]) -> None:
    """Raise if any operation in a commit failed or a claim came back empty."""
    for result in results:
        if isinstance(result, Exception):
            raise result
        if result == []:
            msg = "a Claim found no pending task: the cell ran out of stock"
            raise RuntimeError(msg)


# ---------------------------------------------------------------- throughput


def submit_batches(_engine: Engine, group: int) -> BatchMaker:
    """Batches of ``group`` Submit ops (reused: no idempotency key, so each adds)."""
    ops = [Submit(new_task()) for _ in range(group)]
    return lambda: ops


def claim_batches(engine: Engine, group: int) -> BatchMaker:
    """Batches of ``group`` Claim(max_tasks=1) ops, restocking pending tasks."""
    ops = [Claim(WORKER_ID, max_tasks=1) for _ in range(group)]
    pending = 0

    def next_batch() -> Sequence[Op]:
        nonlocal pending
        if pending < group:
            restock = max(RESTOCK_TASKS, group)
            fill(engine, restock)
            pending += restock
        pending -= group
        return ops

    return next_batch


def ack_batches(engine: Engine, group: int) -> BatchMaker:
    """Batches of ``group`` Ack ops for leases claimed beforehand."""
    leases: deque[tuple[int, int]] = deque()

    def next_batch() -> Sequence[Op]:
        if len(leases) < group:
            leases.extend(claim_leases(engine, max(RESTOCK_TASKS, group)))
        return [Ack(*leases.popleft()) for _ in range(group)]

    return next_batch


BATCH_MAKERS: dict[str, Callable[[Engine, int], BatchMaker]] = {
    "submit": submit_batches,
    "claim": claim_batches,
    "ack": ack_batches,
}


def time_commits(engine: Engine, next_batch: BatchMaker, budget_s: float) -> CellTime:
    """Commit batches until ``budget_s`` is spent inside `Engine.commit`."""
    ops = 0
    elapsed = 0.0
    while elapsed < budget_s:
        batch = next_batch()
        start = time.perf_counter()
        results = engine.commit(batch)
        elapsed += time.perf_counter() - start
        check_results(results)
        ops += len(batch)
    return ops, elapsed


def run_cell(op: str, *, fsync: bool, group: int, settings: Settings) -> CellResult:
    """Measure one operation at one fsync mode and group size, in a fresh store."""
    with (
        tempfile.TemporaryDirectory(dir=settings.data_root, prefix="tq-cell-") as tmp,
        Engine(tmp, fsync=fsync) as engine,
    ):
        next_batch = BATCH_MAKERS[op](engine, group)
        ops, seconds = time_commits(engine, next_batch, settings.cell_seconds)
    return CellResult(op, fsync, group, ops, seconds)


def run_throughput(settings: Settings) -> list[CellResult]:
    """Every cell: each operation, fsync on then off, each group size."""
    return [
        run_cell(op, fsync=fsync, group=group, settings=settings)
        for op in BATCH_MAKERS
        for fsync in (True, False)
        for group in GROUP_SIZES
    ]


def print_throughput(cells: list[CellResult], settings: Settings) -> None:
    """Print the throughput table."""
    print()
    print(
        "1. In-process throughput: payload 256 B, fresh data dir per cell,"
        f"\n   ~{settings.cell_seconds:g} s per cell timed inside Engine.commit only"
    )
    print(
        "   N ops per commit: submit = N x Submit; claim = N x Claim(max_tasks=1);"
        " ack = N x Ack"
    )
    header = (
        f"{'op':<7}{'fsync':<6}{'N':>6}{'ops':>11}{'s':>7}{'ops/s':>12}{'µs/op':>10}"
    )
    print(header)
    print("-" * len(header))
    for cell in cells:
        print(
            f"{cell.op:<7}{'on' if cell.fsync else 'off':<6}{cell.group:>6,}"
            f"{cell.ops:>11,}{cell.seconds:>7.2f}{cell.ops_per_s:>12,.0f}"
            f"{cell.us_per_op:>10.2f}"
        )


# ---------------------------------------------------------------- memory, recovery


def rss_mb(field: str = "VmRSS") -> float:
    """Read our resident set (or another /proc/self/status field) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB
    msg = f"/proc/self/status has no {field}"
    raise RuntimeError(msg)


def dir_size_mb(path: Path) -> float:
    """Total size of the files under ``path`` in MB."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / MB


def child_fill(data_dir: Path, tasks: int) -> dict[str, float]:
    """Fill a fresh store with ``tasks`` pending tasks; report time and memory."""
    rss_start = rss_mb()
    start = time.perf_counter()
    engine = Engine(str(data_dir), fsync=False)
    fill(engine, tasks)
    filled = time.perf_counter()
    rss_filled = rss_mb()
    engine.close()
    closed = time.perf_counter()
    return {
        "rss_start_mb": rss_start,
        "fill_s": filled - start,
        "rss_filled_mb": rss_filled,
        "rss_peak_mb": rss_mb("VmHWM"),
        "close_s": closed - filled,
        "disk_mb": dir_size_mb(data_dir),
    }


def child_reopen(data_dir: Path) -> dict[str, float]:
    """Reopen a filled store; time the open and the first claim, read memory."""
    rss_start = rss_mb()
    start = time.perf_counter()
    engine = Engine(str(data_dir), fsync=True)
    opened = time.perf_counter()
    pending = engine.counts().by_state.get("pending", 0)
    rss_open = rss_mb()
    claim_start = time.perf_counter()
    claimed = engine.claim(WORKER_ID, 1)
    claim_end = time.perf_counter()
    engine.close()
    return {
        "rss_start_mb": rss_start,
        "open_s": opened - start,
        "pending": pending,
        "rss_open_mb": rss_open,
        "claim_s": claim_end - claim_start,
        "claimed": len(claimed),
    }


def in_fresh_process(
    phase: Callable[..., dict[str, float]], *args: object
) -> dict[str, float]:
    """Run ``phase(*args)`` in a newly spawned interpreter and return its report.

    Spawned, not forked: the child shares no memory with this process and opens
    RocksDB itself (its background threads would not survive a fork).
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(phase, *args).result()


def run_recovery(settings: Settings) -> tuple[dict[str, float], dict[str, float]]:
    """Fill a store in one child and reopen it in another; return both reports."""
    with tempfile.TemporaryDirectory(dir=settings.data_root, prefix="tq-mem-") as tmp:
        data_dir = Path(tmp) / "data"
        filled = in_fresh_process(child_fill, data_dir, settings.tasks)
        reopened = in_fresh_process(child_reopen, data_dir)
    return filled, reopened


def verdict(*, passed: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if passed else "FAIL"


Row = tuple[str, str, str, str]
"""One line of the memory and recovery table: measure, value, bar, verdict."""


def fill_rows(filled: dict[str, float], tasks: int) -> list[Row]:
    """Tabulate filling the store and closing it."""
    rss = filled["rss_filled_mb"]
    rate = f"{tasks / filled['fill_s']:,.0f} tasks/s"
    return [
        (
            "RSS before open (python + import tq)",
            f"{filled['rss_start_mb']:.1f} MB",
            "",
            "",
        ),
        (
            "fill (submit_many x 1,000, fsync off)",
            f"{filled['fill_s']:.2f} s",
            rate,
            "",
        ),
        (
            "RSS after filling",
            f"{rss:.1f} MB",
            RSS_BAR,
            verdict(passed=rss < RSS_BAR_MB),
        ),
        ("peak RSS while filling", f"{filled['rss_peak_mb']:.1f} MB", "", ""),
        ("close (flush)", f"{filled['close_s']:.2f} s", "", ""),
        ("data dir on disk after close", f"{filled['disk_mb']:.1f} MB", "", ""),
    ]


def reopen_rows(reopened: dict[str, float], tasks: int) -> list[Row]:
    """Tabulate reopening the store and serving the first claim."""
    open_s, rss, pending = (
        reopened["open_s"],
        reopened["rss_open_mb"],
        reopened["pending"],
    )
    serving_s = open_s + reopened["claim_s"]
    claim = f"{reopened['claim_s'] * 1e3:.2f} ms"
    return [
        (
            "reopen: Engine(), indexes rebuilt",
            f"{open_s:.3f} s",
            TIME_BAR,
            verdict(passed=open_s < SERVING_BAR_S),
        ),
        (
            "pending after reopen (counts())",
            f"{pending:,.0f}",
            f"= {tasks:,}",
            verdict(passed=pending == tasks),
        ),
        (
            "RSS after reopening",
            f"{rss:.1f} MB",
            RSS_BAR,
            verdict(passed=rss < RSS_BAR_MB),
        ),
        (
            "first claim after reopen (fsync on)",
            claim,
            "1 task",
            verdict(passed=reopened["claimed"] == 1),
        ),
        (
            "serving again: reopen + first claim",
            f"{serving_s:.3f} s",
            TIME_BAR,
            verdict(passed=serving_s < SERVING_BAR_S),
        ),
    ]


def print_recovery(
    filled: dict[str, float], reopened: dict[str, float], settings: Settings
) -> None:
    """Print the memory and recovery table."""
    print()
    print(
        f"2. Memory and recovery: {settings.tasks:,} pending tasks of 256 B, each"
        " phase in a fresh child process"
    )
    if settings.quick:
        print("   (quick run: the bars are set for 1,000,000 tasks)")
    header = f"{'measure':<40}{'value':>14}  {'bar':<16}{'verdict'}"
    print(header)
    print("-" * len(header))
    rows = fill_rows(filled, settings.tasks) + reopen_rows(reopened, settings.tasks)
    for measure, value, bar, mark in rows:
        print(f"{measure:<40}{value:>14}  {bar:<16}{mark}".rstrip())


# ---------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="short cells and 100,000 tasks"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the temporary data directories go (default: system temp)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the machine, the throughput table and the memory/recovery table."""
    args = parse_args(argv)
    settings = Settings(
        data_root=args.data_root,
        cell_seconds=QUICK_CELL_SECONDS if args.quick else CELL_SECONDS,
        tasks=QUICK_TASKS if args.quick else FULL_TASKS,
        quick=args.quick,
    )
    print_machine(settings)
    print_throughput(run_throughput(settings), settings)
    print_recovery(*run_recovery(settings), settings)


if __name__ == "__main__":
    main()
