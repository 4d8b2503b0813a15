"""The committed code in python/tq/v1/ is what scripts/gen-proto writes from
proto/tq/v1/tq.proto today."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "python" / "tq" / "v1"


def _generated_files(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if "_pb2" in path.name
    }


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "gen-proto"), str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )

    fresh = _generated_files(tmp_path / "tq" / "v1")
    assert sorted(fresh) == ["tq_pb2.py", "tq_pb2.pyi", "tq_pb2_grpc.py"]
    stale = [
        name
        for name, content in fresh.items()
        if (COMMITTED / name).read_bytes() != content
    ]
    assert not stale, (
        f"{', '.join(stale)} differ from proto/tq/v1/tq.proto: "
        "run scripts/gen-proto and commit the result"
    )
    assert sorted(_generated_files(COMMITTED)) == sorted(fresh)
