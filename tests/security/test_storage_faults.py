"""A broker whose disk fills up or whose fsyncs fail, for real.

Disk full: the data dir lives on a small tmpfs and a ballast file fills what
is left (mounting needs root; without it the test skips, saying so). Failing
fsync: a shim preloaded into the broker (faults/failing_fsync.c, compiled
with cc) makes every fsync and fdatasync fail with EIO while a marker file
exists.

Either way writes must fail with ``STORAGE`` errors that say why, nothing may
be acknowledged that is not on disk, ``/health`` must turn unhealthy, and once
the fault is gone the broker must serve again without a restart.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import BrokerProcess, wait_until

from tq import Client
from tq.errors import StorageError

DISK_MB = 48
PAYLOAD = b"p" * 32_768


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_bin, umount_bin = shutil.which("mount"), shutil.which("umount")
    if mount_bin is None or umount_bin is None:
        pytest.skip("a small tmpfs for the data dir needs mount(8) and umount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        [mount_bin, "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            "a small tmpfs for the data dir needs mount(8) as root: "
            + mounted.stderr.strip()
        )
    yield disk
    subprocess.run([umount_bin, "-l", str(disk)], check=False)


@pytest.fixture
def broker_on_small_disk(small_disk: Path, tmp_path: Path) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        small_disk / "data", tmp_path / "broker.log", {"fsync": True}
    )
    process.start()
    yield process
    process.kill()


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk has no space left."""
    ballast = disk / "ballast"
    _write_until_full(ballast, b"\0" * 2**20)
    # The last megabyte may have been cut short: fill the final bytes too.
    _write_until_full(ballast, b"\0" * 512)
    return ballast


def _write_until_full(path: Path, chunk: bytes) -> None:
    with path.open("ab", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


def test_a_full_disk_refuses_writes_with_storage_errors_and_service_returns_with_space(
    broker_on_small_disk: BrokerProcess, small_disk: Path
) -> None:
    broker = broker_on_small_disk
    with (
        Client.connect(broker.address) as client,
        httpx.Client(base_url=broker.rest_url, timeout=30) as api,
    ):
        before = [client.submit_task("echo", PAYLOAD) for _ in range(20)]
        ballast = fill(small_disk)

        # Space the store set aside before the disk filled may take a few
        # more writes; then every write is refused.
        stored_while_full: list[int] = []
        refused: StorageError | None = None
        while refused is None and len(stored_while_full) < 2000:
            try:
                stored_while_full.append(client.submit_task("echo", PAYLOAD))
            except StorageError as exc:
                refused = exc
        assert refused is not None, "a full disk never refused a write"
        assert "No space left on device" in str(refused)
        health = api.get("/health")
        assert health.status_code == 503
        assert "No space left" in health.json()["storage_error"]
        with pytest.raises(StorageError):
            client.submit_many([("echo", PAYLOAD, 100)] * 10)
        # Reads go on.
        assert client.get_task(before[0]).state == "pending"

        ballast.unlink()
        probe = Probe(client)
        wait_until(probe.submit_works, 60, "the broker to store writes again")
        assert api.get("/health").status_code == 200
        after = client.submit_task("echo", b"after the disk had room again")

    # Everything acknowledged is on disk, and nothing else was stored.
    broker.kill()
    broker.start()
    with Client.connect(broker.address) as client:
        for task_id in [*before, *stored_while_full, after]:
            assert client.get_task(task_id).state == "pending"
        pending = client.stats()["by_state"]["pending"]
        acknowledged = len(before) + len(stored_while_full) + 1
        # The probe that found the space again stored one task of its own.
        assert pending == acknowledged + probe.stored


class Probe:
    """Submits until one is stored, counting what it stored."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.stored = 0

    def submit_works(self) -> bool:
        try:
            self.client.submit_task("echo", b"probe")
        except StorageError:
            time.sleep(0.2)
            return False
        self.stored += 1
        return True


FAULTS = Path(__file__).parent / "faults"


@pytest.fixture(scope="module")
def failing_fsync_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("the failing-fsync shim needs a C compiler (cc)")
    shim = tmp_path_factory.mktemp("shim") / "failing_fsync.so"
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-o",
            str(shim),
            str(FAULTS / "failing_fsync.c"),
            "-ldl",
        ],
        check=True,
        capture_output=True,
    )
    return shim


def test_failing_fsyncs_refuse_writes_with_storage_errors_until_they_work_again(
    failing_fsync_shim: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "fail-fsync"
    broker = BrokerProcess(tmp_path / "data", tmp_path / "broker.log", {"fsync": True})
    broker.extra_env = {
        "LD_PRELOAD": str(failing_fsync_shim),
        "TQ_FAIL_FSYNC_WHILE": str(marker),
    }
    broker.start()
    try:
        with (
            Client.connect(broker.address) as client,
            httpx.Client(base_url=broker.rest_url, timeout=30) as api,
        ):
            before = [client.submit_task("echo", PAYLOAD) for _ in range(20)]
            marker.touch()
            with pytest.raises(StorageError) as refused:
                client.submit_task("echo", b"never acknowledged")
            assert "Input/output error" in str(refused.value)
            health = api.get("/health")
            assert health.status_code == 503
            assert "Input/output error" in health.json()["storage_error"]
            assert client.get_task(before[0]).state == "pending"

            marker.unlink()
            probe = Probe(client)
            wait_until(probe.submit_works, 60, "the broker to store writes again")
            assert api.get("/health").status_code == 200
        broker.kill()
        broker.start()
        with Client.connect(broker.address) as client:
            for task_id in before:
                assert client.get_task(task_id).state == "pending"
    finally:
        broker.kill()
