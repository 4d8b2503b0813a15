"""Claims against an in-process broker, where a test can order the commits."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from tq.broker.service import Broker, TaskSpec
from tq.testing import open_broker


async def claim_into(broker: Broker, claimed: list[int], n: int) -> None:
    """Claim up to ``n`` tasks with a long poll; add their ids to ``claimed``."""
    tasks = await broker.claim("w-1", n, None, wait_s=5.0)
    claimed.extend(task.task_id for task in tasks)


async def test_a_claim_committed_just_before_a_submit_gets_the_task_at_once(
    tmp_path: Path,
) -> None:
    async with open_broker(str(tmp_path / "data"), fsync=False) as test_broker:
        broker = test_broker.broker
        claimed: list[int] = []
        with trio.fail_after(2):
            async with trio.open_nursery() as nursery:
                # Queued in this order, the claim and the submit share one
                # commit, the claim first: it finds nothing, and no parked
                # claim rides along. It must look again rather than sleep
                # through its long poll with the task pending.
                nursery.start_soon(claim_into, broker, claimed, 1)
                nursery.start_soon(broker.submit, TaskSpec("echo", b"x"))
        assert len(claimed) == 1


async def test_a_claim_with_nothing_pending_parks_without_a_commit(
    tmp_path: Path,
) -> None:
    async with open_broker(str(tmp_path / "data"), fsync=False) as test_broker:
        broker = test_broker.broker
        commits_before = broker.commit.stats.commits
        with trio.fail_after(2):
            assert await broker.claim("w-1", 4, None, wait_s=0.0) == []
            assert await broker.claim("w-1", 4, None, wait_s=0.05) == []
        assert broker.commit.stats.commits == commits_before

        claimed: list[int] = []
        with trio.fail_after(2):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(claim_into, broker, claimed, 4)
                await trio.testing.wait_all_tasks_blocked()
                submitted = await broker.submit(TaskSpec("echo", b"x"))
        assert claimed == [submitted.task_id]


async def test_a_claim_made_while_a_submit_is_being_written_gets_the_task(
    tmp_path: Path,
) -> None:
    async with open_broker(str(tmp_path / "data"), fsync=True) as test_broker:
        broker = test_broker.broker
        claimed: list[int] = []
        with trio.fail_after(2):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(broker.submit, TaskSpec("echo", b"x"))
                # The submit's batch is in flight, and took its riders at its
                # start: a claim now must not park on the strength of the
                # empty queue the last commit left.
                await trio.testing.wait_all_tasks_blocked()
                assert not broker.commit.nothing_pending
                nursery.start_soon(claim_into, broker, claimed, 4)
        assert len(claimed) == 1
