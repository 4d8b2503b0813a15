"""tq as the workloads run it: ``python -m tq broker`` and two ``tq worker``.

Everything runs with the dev .venv's interpreter (``--tq-python``), so what is
measured is the tq installed there, with the broker's shipped front ends (REST,
metrics, gRPC if installed) on ephemeral ports and fsync on.
"""

from __future__ import annotations

from pathlib import Path

from qbench.procs import Proc
from qbench.stamps import ENV as STAMPS_ENV
from qbench.systems.base import System

MAX_PENDING = 2_000_000
"""Above the 1,000,000 of the memory workload (the default is 100,000)."""

CONFIG = """\
host: 127.0.0.1
port: {port}
rest_port: 0
metrics_port: 0
grpc_port: 0
data_dir: {data_dir}
fsync: true
max_pending: {max_pending}
log_level: warning
"""


class TqSystem(System):
    name = "tq"
    durability = "fsync on"
    persistence = (
        "RocksDB with fsync on: a submit is answered once it is on disk; "
        "max_pending raised to 2,000,000 for the memory workload"
    )
    batch_api = "submit_many (one commit)"
    result_api = "AsyncClient.wait_for_result (the broker's wait op)"

    @property
    def address(self) -> str:
        """The broker's ``HOST:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def workers_text(self) -> str:
        return (
            f"{self.ctx.worker_processes} x `tq worker --concurrency "
            f"{self.ctx.tq_concurrency}` (async handlers on the event loop)"
        )

    def _spawn_store(self) -> Proc:
        config = self.data_dir.parent / f"{self.data_dir.name}.yaml"
        config.write_text(
            CONFIG.format(
                port=self.port,
                data_dir=self.data_dir / "store",
                max_pending=MAX_PENDING,
            )
        )
        argv = [self.ctx.tq_python, "-m", "tq", "broker", "--config", str(config)]
        return self.ctx.procs.spawn("tq-broker", argv)

    def start_workers(self, stamps_dir: Path) -> list[Proc]:
        argv = [
            self.ctx.tq_python,
            "-m",
            "tq",
            "worker",
            "--broker",
            self.address,
            "--concurrency",
            str(self.ctx.tq_concurrency),
            "--handlers",
            "qbench.apps.tq_handlers",
            "--log-level",
            "warning",
        ]
        env = {STAMPS_ENV: str(stamps_dir)}
        return [
            self.ctx.procs.spawn(f"tq-worker{i}", argv, env=env)
            for i in range(self.ctx.worker_processes)
        ]

    def driver(self, op: str, **options: object) -> list[str]:
        argv = [self.ctx.tq_python, "-m", "qbench.drivers.tq_driver", op]
        argv += ["--address", self.address]
        for key, value in options.items():
            argv += [f"--{key}", str(value)]
        return argv

    def probe(self, filled: dict[str, object]) -> list[str]:
        return self.driver("probe", n=filled["last_id"])
