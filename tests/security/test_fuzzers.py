"""The wire fuzzer (tests/fuzz/fuzz_wire.py) runs a fixed number of cases clean.

The full campaign is the script itself with more runs; this keeps every build
fuzzing a little, from seeds that are valid requests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

FUZZER = Path(__file__).parents[1] / "fuzz" / "fuzz_wire.py"
RUNS = 50_000
SEEDS = [
    {"id": 0, "op": "hello", "args": {"version": 1, "token": "t"}},
    {"id": 1, "op": "submit", "args": {"task_type": "echo", "payload": b"x"}},
    {
        "id": 2,
        "op": "submit",
        "args": {"task_type": "e", "payload": b"", "delay_ms": 5, "max_retries": 2},
    },
    {"id": 3, "op": "ack_many", "args": {"acks": [{"task_id": 1, "lease_id": 2}]}},
    {"id": 4, "op": "claim", "args": {"max_tasks": 3, "task_types": ["a", "b"]}},
]


def test_the_wire_fuzzer_runs_its_cases_without_a_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris has wheels for Linux x86-64 only")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, seed in enumerate(SEEDS):
        body = cbor2.dumps(seed)
        (corpus / f"seed{number}").write_bytes(len(body).to_bytes(4, "big") + body)
    done = subprocess.run(
        [sys.executable, str(FUZZER), f"-atheris_runs={RUNS}", str(corpus)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {RUNS} in" in done.stderr, done.stderr[-2000:]
