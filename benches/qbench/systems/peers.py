"""The peers as the workloads run them: a private redis-server and their workers.

Redis runs as installed from Debian, with its default persistence stated on
the command line (RDB snapshots at the default save points, no AOF), on an
ephemeral port, in a fresh directory per workload. The workers are each
peer's own command-line runner, started from the benchmark venv.
"""

from __future__ import annotations

from pathlib import Path

from qbench.drivers.peers import PEERS
from qbench.procs import Proc
from qbench.stamps import ENV as STAMPS_ENV
from qbench.systems.base import Context, System

REDIS_SAVE = "3600 1 300 100 60 10000"
"""Redis's default save points, stated so no local redis.conf can change them."""

REDIS_PERSISTENCE = (
    f"Redis RDB snapshots (save {REDIS_SAVE}, Redis's defaults), appendonly no: "
    "a crash loses what came after the last snapshot"
)


class PeerSystem(System):
    """One peer: Redis plus the peer's workers and drivers."""

    durability = "Redis RDB defaults, no AOF"
    persistence = REDIS_PERSISTENCE

    def __init__(self, ctx: Context, name: str) -> None:
        super().__init__(ctx)
        self.name = name
        self.batch_api = PEERS[name].batch_api
        self.result_api = PEERS[name].result_api
        self._bin = Path(self.ctx.bench_python).parent

    @property
    def redis_url(self) -> str:
        """The private Redis server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn_store(self) -> Proc:
        argv = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", REDIS_SAVE,
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        return self.ctx.procs.spawn(f"{self.name}-redis", argv)

    def before_crash(self) -> None:
        """SAVE, so the RDB file holds the whole fill before the kill -9."""
        proc = self.ctx.procs.spawn(
            f"{self.name}-save", ["redis-cli", "-p", str(self.port), "SAVE"]
        )
        if proc.popen.wait() != 0:
            raise RuntimeError(f"redis-cli SAVE failed:\n{proc.log_tail()}")

    @property
    def workers_text(self) -> str:
        n, c = self.ctx.worker_processes, self.ctx.concurrency
        return {
            "celery": f"{n} x `celery worker -P threads -c {c}`",
            "rq": f"{n} x `rq worker -w rq.worker.SimpleWorker` (one job at a time)",
            "dramatiq": f"`dramatiq --processes {n} --threads {c}`",
            "huey": f"{n} x `huey_consumer -k thread -w {c}`",
        }[self.name]

    def start_workers(self, stamps_dir: Path) -> list[Proc]:
        env = {STAMPS_ENV: str(stamps_dir), "BENCH_REDIS_URL": self.redis_url}
        argvs = self._worker_argvs()
        return [
            self.ctx.procs.spawn(f"{self.name}-worker{i}", argv, env=env)
            for i, argv in enumerate(argvs)
        ]

    def _worker_argvs(self) -> list[list[str]]:
        n, c = self.ctx.worker_processes, str(self.ctx.concurrency)
        if self.name == "dramatiq":
            # One supervisor that forks n worker processes.
            return [
                [str(self._bin / "dramatiq"), "qbench.apps.dramatiq_app",
                 "--processes", str(n), "--threads", c]
            ]  # fmt: skip
        return [self._one_worker(i, c) for i in range(n)]

    def _one_worker(self, i: int, c: str) -> list[str]:
        if self.name == "celery":
            return [
                str(self._bin / "celery"), "-A", "qbench.apps.celery_app", "worker",
                "-P", "threads", "-c", c, "-n", f"w{i}@%h", "-l", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
        if self.name == "rq":
            return [
                str(self._bin / "rq"), "worker", "--url", self.redis_url,
                "-w", "rq.worker.SimpleWorker", "--logging_level", "WARNING",
                "bench",
            ]  # fmt: skip
        return [
            str(self._bin / "huey_consumer"), "qbench.apps.huey_app.huey",
            "-k", "thread", "-w", c, "-q",
        ]  # fmt: skip

    def driver(self, op: str, **options: object) -> list[str]:
        argv = [self.ctx.bench_python, "-m", "qbench.drivers.peer_driver", op]
        argv += ["--peer", self.name, "--redis-url", self.redis_url]
        for key, value in options.items():
            argv += [f"--{key}", str(value)]
        return argv

    def probe(self, filled: dict[str, object]) -> list[str]:
        return self.driver("probe", expect=filled["n"])
