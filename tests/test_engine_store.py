"""What the engine keeps: dead letters, listings, counts, retention and reopening.

Every test opens its own data directory under ``tmp_path`` (see ``conftest.py``)
and drives time with a `ManualClock`, so nothing here waits on the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_support import (
    T0,
    TIMEOUT_MS,
    Store,
    claim_one,
    list_all,
    nonzero,
    put_in_state,
    snapshot,
    submit,
)
from tq._core import STATES, Engine, ManualClock, NewTask, PromoteDue
from tq.errors import (
    EngineClosed,
    InvalidState,
    StorageError,
    StoreLocked,
    TaskNotFound,
)

# Each hypothesis example opens a fresh directory from tmp_path_factory.
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None)


# Dead letters


def test_requeue_moves_a_dead_letter_back_to_pending_with_attempts_reset(
    engine: Engine,
) -> None:
    task_id = put_in_state(engine, "dead_letter")

    engine.requeue(task_id)

    task = engine.get(task_id)
    assert (task.state, task.attempts) == ("pending", 0)
    (claimed,) = engine.claim("w1", 1)
    assert (claimed.task_id, claimed.attempt) == (task_id, 1)


@pytest.mark.parametrize(
    "state", ["scheduled", "pending", "in_progress", "completed", "failed", "cancelled"]
)
def test_requeue_of_a_task_that_is_not_a_dead_letter_raises_invalid_state(
    engine: Engine, state: str
) -> None:
    task_id = put_in_state(engine, state)
    before = snapshot(engine.get(task_id))

    with pytest.raises(InvalidState):
        engine.requeue(task_id)

    assert snapshot(engine.get(task_id)) == before


def test_requeue_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.requeue(424_242)


def test_requeue_dead_letters_takes_one_type_or_all_up_to_the_limit(
    engine: Engine,
) -> None:
    mail = [put_in_state(engine, "dead_letter", "mail") for _ in range(3)]
    sms = [put_in_state(engine, "dead_letter", "sms") for _ in range(2)]

    assert engine.requeue_dead_letters("mail", limit=2) == 2
    assert engine.requeue_dead_letters("mail") == 1
    assert {engine.get(i).state for i in mail} == {"pending"}
    assert {engine.get(i).state for i in sms} == {"dead_letter"}
    assert engine.requeue_dead_letters() == 2
    assert nonzero(engine.counts().by_state) == {"pending": 5}


def test_purge_dead_letters_deletes_only_those_older_than_the_cutoff(
    engine: Engine, clock: ManualClock
) -> None:
    old = put_in_state(engine, "dead_letter", "mail")
    old_sms = put_in_state(engine, "dead_letter", "sms")
    clock.advance(10_000)
    new = put_in_state(engine, "dead_letter", "mail")

    assert engine.purge_dead_letters(before_ms=T0 + 5_000, task_type="mail") == 1
    with pytest.raises(TaskNotFound):
        engine.get(old)
    assert engine.get(old_sms).state == "dead_letter"
    assert engine.get(new).state == "dead_letter"
    assert engine.purge_dead_letters(before_ms=T0 + 5_000) == 1
    assert engine.purge_dead_letters() == 1
    assert nonzero(engine.counts().by_state) == {}


def test_purge_dead_letters_stops_at_its_limit(engine: Engine) -> None:
    for _ in range(3):
        put_in_state(engine, "dead_letter")

    assert engine.purge_dead_letters(limit=2) == 2
    assert nonzero(engine.counts().by_state) == {"dead_letter": 1}


# Listing and counts


def test_list_tasks_pages_through_every_task_with_cursors(engine: Engine) -> None:
    ids = [r.task_id for r in engine.submit_many([NewTask("job", b"")] * 25)]

    pages = []
    cursor: bytes | None = None
    while True:
        page = engine.list_tasks("pending", limit=10, cursor=cursor)
        pages.append([task.task_id for task in page.tasks])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [len(p) for p in pages] == [10, 10, 5]
    listed = [i for p in pages for i in p]
    assert sorted(listed) == ids


def test_list_tasks_pages_by_type_and_state(engine: Engine) -> None:
    in_progress = [put_in_state(engine, "in_progress", "mail") for _ in range(4)]
    mail = [submit(engine, "mail") for _ in range(7)]
    submit(engine, "sms")

    assert sorted(list_all(engine, "pending", "mail")) == mail
    assert sorted(list_all(engine, "in_progress")) == in_progress
    assert list_all(engine, "completed") == []
    page = engine.list_tasks("pending", "mail", limit=2)
    assert all(task.task_type == "mail" for task in page.tasks)


@PROPERTY_SETTINGS
@given(count=st.integers(0, 30), limit=st.integers(1, 8))
def test_paging_lists_each_task_exactly_once_for_any_page_size(
    tmp_path_factory: pytest.TempPathFactory, count: int, limit: int
) -> None:
    path = tmp_path_factory.mktemp("paging")
    with Engine(str(path), clock=ManualClock(T0)) as engine:
        ids = [r.task_id for r in engine.submit_many([NewTask("job", b"")] * count)]
        listed: list[int] = []
        cursor: bytes | None = None
        for _ in range(count // limit + 2):
            page = engine.list_tasks("pending", limit=limit, cursor=cursor)
            assert len(page.tasks) <= limit
            listed.extend(task.task_id for task in page.tasks)
            cursor = page.next_cursor
            if cursor is None:
                break

    assert cursor is None
    assert sorted(listed) == ids


def test_counts_report_tasks_by_state_type_and_pending_tier(engine: Engine) -> None:
    put_in_state(engine, "in_progress", "mail")
    put_in_state(engine, "completed", "mail")
    put_in_state(engine, "dead_letter", "sms")
    put_in_state(engine, "failed", "sms")
    put_in_state(engine, "scheduled", "mail")
    put_in_state(engine, "cancelled", "sms")
    for priority in (0, 99):
        submit(engine, "mail", priority=priority)
    for priority in (100, 150, 199):
        submit(engine, "sms", priority=priority)
    for priority in (200, 255):
        submit(engine, "mail", priority=priority)

    counts = engine.counts()

    assert nonzero(counts.by_state) == {
        "pending": 7,
        "in_progress": 1,
        "completed": 1,
        "dead_letter": 1,
        "failed": 1,
        "scheduled": 1,
        "cancelled": 1,
    }
    assert set(counts.by_state) <= set(STATES)
    assert {t: nonzero(c) for t, c in counts.by_type.items()} == {
        "mail": {"in_progress": 1, "completed": 1, "scheduled": 1, "pending": 4},
        "sms": {"dead_letter": 1, "failed": 1, "cancelled": 1, "pending": 3},
    }
    tiers = counts.pending_by_tier
    assert set(tiers) <= {"low", "normal", "high"}
    assert [tiers.get(k, 0) for k in ("low", "normal", "high")] == [2, 3, 2]


def test_counts_leave_out_types_with_no_tasks(engine: Engine) -> None:
    task_id = put_in_state(engine, "completed", "gone")
    submit(engine, "kept")

    assert engine.sweep(T0 + 1, 0) == 1

    assert set(engine.counts().by_type) == {"kept"}
    assert nonzero(engine.counts().by_state) == {"pending": 1}
    with pytest.raises(TaskNotFound):
        engine.get(task_id)


def test_states_are_the_seven_task_states() -> None:
    assert sorted(STATES) == sorted(
        [
            "scheduled",
            "pending",
            "in_progress",
            "completed",
            "failed",
            "dead_letter",
            "cancelled",
        ]
    )
    assert STATES.index("scheduled") < STATES.index("pending")
    assert STATES.index("pending") < STATES.index("in_progress")


# next_due_ms


def test_next_due_is_none_with_nothing_scheduled_or_leased(engine: Engine) -> None:
    assert engine.next_due_ms() is None
    put_in_state(engine, "completed")
    submit(engine)

    assert engine.next_due_ms() is None


def test_next_due_is_the_earliest_run_at_or_lease_deadline(
    engine: Engine, clock: ManualClock
) -> None:
    submit(engine, delay_ms=5_000)
    assert engine.next_due_ms() == T0 + 5_000

    submit(engine, delay_ms=3_000)
    assert engine.next_due_ms() == T0 + 3_000

    submit(engine)
    lease = claim_one(engine)
    assert engine.next_due_ms() == T0 + TIMEOUT_MS

    engine.fail(lease.task_id, lease.lease_id, "boom", T0 + 2_000)
    assert engine.next_due_ms() == T0 + 2_000

    clock.advance(3_000)
    assert engine.promote_due() == 2
    assert engine.next_due_ms() == T0 + 5_000


# Queue depth


def test_queue_depth_counts_tasks_waiting_to_run(engine: Engine) -> None:
    assert engine.queue_depth() == 0
    for state in STATES:
        put_in_state(engine, state)
    submit(engine, "other", delay_ms=5)

    assert engine.queue_depth() == 4


# Retention sweep


def test_sweep_deletes_finished_tasks_before_their_cutoffs_and_keeps_the_rest(
    engine: Engine, clock: ManualClock
) -> None:
    kept_states = ["in_progress", "failed", "scheduled", "pending"]
    kept = [put_in_state(engine, state) for state in kept_states]
    done = [put_in_state(engine, state) for state in ("completed", "cancelled")]
    dead = put_in_state(engine, "dead_letter")
    clock.advance(10_000)
    recent = put_in_state(engine, "completed")

    assert engine.sweep(T0 + 5_000, T0 - 1) == 2

    for task_id in done:
        with pytest.raises(TaskNotFound):
            engine.get(task_id)
    assert engine.get(dead).state == "dead_letter"
    assert engine.get(recent).state == "completed"
    assert [engine.get(i).state for i in kept] == kept_states
    assert engine.sweep(T0 + 5_000, T0 + 5_000) == 1
    with pytest.raises(TaskNotFound):
        engine.get(dead)
    assert nonzero(engine.counts().by_state) == {
        "in_progress": 1,
        "failed": 1,
        "scheduled": 1,
        "pending": 1,
        "completed": 1,
    }


def test_sweep_stops_at_its_limit(engine: Engine) -> None:
    for _ in range(5):
        put_in_state(engine, "completed")

    assert engine.sweep(T0 + 1, T0 + 1, limit=3) == 3
    assert engine.sweep(T0 + 1, T0 + 1, limit=3) == 2
    assert nonzero(engine.counts().by_state) == {}


# Reopening


def test_reopen_keeps_every_task_with_all_its_fields(store: Store) -> None:
    engine = store.engine
    ids = [put_in_state(engine, state) for state in STATES]
    engine.submit(NewTask("keyed", b"k", idempotency_key="once"))
    engine.cancel(ids[list(STATES).index("in_progress")])
    before = [snapshot(engine.get(i)) for i in ids]
    counts = engine.counts()

    engine = store.reopen()

    assert [snapshot(engine.get(i)) for i in ids] == before
    again = engine.counts()
    assert (again.by_state, again.by_type, again.pending_by_tier) == (
        counts.by_state,
        counts.by_type,
        counts.pending_by_tier,
    )
    assert (
        engine.submit(NewTask("keyed", b"k2", idempotency_key="once")).created is False
    )


def test_reopen_keeps_leases_so_the_old_lease_id_can_still_ack(
    store: Store, clock: ManualClock
) -> None:
    task_id = submit(store.engine)
    claimed = claim_one(store.engine, "w7")

    engine = store.reopen()

    task = engine.get(task_id)
    assert (task.state, task.lease_id, task.worker_id, task.lease_deadline_ms) == (
        "in_progress",
        claimed.lease_id,
        "w7",
        claimed.deadline_ms,
    )
    assert [lease.lease_id for lease in engine.worker_leases("w7")] == [
        claimed.lease_id
    ]
    assert engine.claim("w8", 10) == []
    clock.advance(10)
    engine.ack(task_id, claimed.lease_id, b"after restart")
    assert engine.get(task_id).result == b"after restart"


def test_reopen_keeps_lease_deadlines_so_expiry_is_still_reported(
    store: Store, clock: ManualClock
) -> None:
    submit(store.engine)
    claimed = claim_one(store.engine)

    engine = store.reopen()

    assert engine.next_due_ms() == claimed.deadline_ms
    clock.set(claimed.deadline_ms + 1)
    assert [lease.lease_id for lease in engine.expired_leases()] == [claimed.lease_id]


def test_reopen_keeps_the_claim_order_and_the_schedule(
    store: Store, clock: ManualClock
) -> None:
    delayed = submit(store.engine, priority=10, delay_ms=500)
    order = [submit(store.engine, priority=p) for p in (10, 250, 10, 120)]

    engine = store.reopen()

    assert engine.next_due_ms() == T0 + 500
    assert [c.task_id for c in engine.claim("w1", 2)] == [order[1], order[3]]
    clock.advance(500)
    assert [c.task_id for c in engine.claim("w1", 3)] == [order[0], order[2], delayed]


def test_ids_issued_after_reopen_never_repeat_earlier_ones(store: Store) -> None:
    engine = store.engine
    task_ids: set[int] = set()
    leases: set[int] = set()
    for n in range(6):
        task_id = submit(engine)
        lease = claim_one(engine).lease_id
        if n % 2:
            engine.ack(task_id, lease)
        task_ids.add(task_id)
        leases.add(lease)

    engine = store.reopen()

    new_ids = {submit(engine) for _ in range(3)}
    new_leases = {c.lease_id for c in engine.claim("w1", 3)}
    assert not new_ids & task_ids
    assert not new_leases & leases


def test_a_swept_task_id_is_not_reused_after_reopen(store: Store) -> None:
    submit(store.engine)
    newest = put_in_state(store.engine, "completed")
    assert store.engine.sweep(T0 + 1, 0) == 1

    engine = store.reopen()

    assert submit(engine) > newest


# Opening and closing


def test_opening_a_data_dir_that_is_already_open_raises_store_locked(
    store: Store, clock: ManualClock
) -> None:
    with pytest.raises(StoreLocked) as raised:
        Engine(str(store.path), clock=clock)

    assert isinstance(raised.value, StorageError)
    store.engine.close()
    with Engine(str(store.path), clock=clock) as reopened:
        assert reopened.counts().by_type == {}


CALLS_AFTER_CLOSE: list[Callable[[Engine], object]] = [
    lambda e: e.submit(NewTask("job", b"")),
    lambda e: e.submit_many([NewTask("job", b"")]),
    lambda e: e.claim("w1", 1),
    lambda e: e.ack(1, 1),
    lambda e: e.fail(1, 1, "x"),
    lambda e: e.extend(1, 1, T0),
    lambda e: e.cancel(1),
    lambda e: e.requeue(1),
    lambda e: e.promote_due(),
    lambda e: e.requeue_dead_letters(),
    lambda e: e.purge_dead_letters(),
    lambda e: e.sweep(T0, T0),
    lambda e: e.get(1),
    lambda e: e.list_tasks("pending"),
    lambda e: e.counts(),
    lambda e: e.expired_leases(),
    lambda e: e.worker_leases("w1"),
    lambda e: e.next_due_ms(),
    lambda e: e.queue_depth(),
    lambda e: e.commit([PromoteDue()]),
]


@pytest.mark.parametrize("call", CALLS_AFTER_CLOSE)
def test_every_call_after_close_raises_engine_closed(
    engine: Engine, call: Callable[[Engine], object]
) -> None:
    submit(engine)
    engine.close()

    with pytest.raises(EngineClosed):
        call(engine)


def test_closing_while_other_threads_call_gives_them_engine_closed(
    store: Store,
) -> None:
    engine = store.engine
    engine.submit_many([NewTask("job", b"x" * 100)] * 500)
    busy = threading.Semaphore(0)
    unexpected: list[BaseException] = []

    def hammer(worker_id: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: engine.list_tasks("pending", limit=200),
            lambda: engine.claim(worker_id, 2),
            engine.counts,
            lambda: submit(engine),
        ]
        try:
            for n in range(1_000_000):
                if n == 40:
                    busy.release()
                calls[n % len(calls)]()
        except EngineClosed:
            return
        except Exception as error:
            unexpected.append(error)
        busy.release()

    threads = [threading.Thread(target=hammer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in threads:
        busy.acquire()
    engine.close()
    for thread in threads:
        thread.join()

    assert unexpected == []
    reopened = store.reopen()
    listed = {state: len(list_all(reopened, state)) for state in STATES}
    assert nonzero(reopened.counts().by_state) == nonzero(listed)
    assert listed["pending"] + listed["in_progress"] >= 500


def test_the_context_manager_closes_the_engine_on_exit(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "data")
    with Engine(path, clock=clock) as engine:
        task_id = submit(engine)

    with pytest.raises(EngineClosed):
        engine.get(task_id)
    with Engine(path, clock=clock) as reopened:
        assert reopened.get(task_id).state == "pending"


def test_the_engine_reports_its_path_fsync_setting_and_clock(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = str(tmp_path / "data")
    with Engine(path, fsync=False, clock=clock) as engine:
        assert (engine.path, engine.fsync) == (path, False)
        assert engine.now_ms() == T0
        clock.advance(1_234)
        assert engine.now_ms() == T0 + 1_234
        clock.set(T0 - 5)
        assert engine.now_ms() == T0 - 5


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock.now_ms() == 0
    clock.advance(7)
    clock.set(100)
    clock.advance(5)

    assert clock.now_ms() == 105
