"""kill -9 of the broker, again and again, under load: nothing acknowledged is lost.

A short run of the crash harness (`tests/support/crash_harness.py`, which
documents what it counts); run that script for the long one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_harness import CRASH_POINTS, CYCLE_KINDS, MUST_BE_ZERO, report, run

CYCLES = 2 * len(CYCLE_KINDS)


@pytest.mark.slow
def test_a_broker_killed_at_random_and_at_every_crash_point_loses_no_acknowledged_task(
    tmp_path: Path,
) -> None:
    log, verdict = run(tmp_path, CYCLES, seed=7)
    print(report(log, verdict))
    assert {name: verdict[name] for name in MUST_BE_ZERO} == dict.fromkeys(
        MUST_BE_ZERO, 0
    )
    assert verdict["acknowledged"] > 100
    assert verdict["deliveries"] > 100
    never_reached = [point for point in CRASH_POINTS if not log.reached[point]]
    assert not never_reached, f"crash points never reached: {never_reached}"
