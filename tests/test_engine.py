"""Behaviour of every engine operation on tasks and leases, and each of its errors.

Every test opens its own data directory under ``tmp_path`` (see ``conftest.py``)
and drives time with a `ManualClock`, so nothing here waits on the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_support import (
    DELAY_MS,
    RETRY_MS,
    T0,
    TIMEOUT_MS,
    claim_one,
    nonzero,
    put_in_state,
    snapshot,
    submit,
)
from tq._core import (
    Ack,
    Cancel,
    Claim,
    ClaimedTask,
    Engine,
    Extend,
    Fail,
    ManualClock,
    NewTask,
    PromoteDue,
    Requeue,
    Submit,
    Submitted,
)
from tq.errors import BadRequest, InvalidState, StaleLease, TaskNotFound

# Each hypothesis example opens a fresh directory from tmp_path_factory.
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None)


# Submit and get


def test_submit_stores_a_pending_task_with_every_field_set(engine: Engine) -> None:
    new = NewTask(
        "email", b"\x00to@example.com", priority=7, timeout_ms=5_000, max_retries=9
    )
    submitted = engine.submit(new)

    assert submitted.created
    assert submitted.task_id > 0
    assert snapshot(engine.get(submitted.task_id)) == {
        "task_id": submitted.task_id,
        "task_type": "email",
        "payload": b"\x00to@example.com",
        "priority": 7,
        "state": "pending",
        "run_at_ms": T0,
        "timeout_ms": 5_000,
        "max_retries": 9,
        "attempts": 0,
        "idempotency_key": None,
        "created_ms": T0,
        "updated_ms": T0,
        "finished_ms": None,
        "last_error": None,
        "result": None,
        "lease_id": None,
        "worker_id": None,
        "lease_deadline_ms": None,
        "cancel_requested": False,
        "history": [],
    }


def test_new_task_defaults_match_the_stub(engine: Engine) -> None:
    task = engine.get(engine.submit(NewTask("job", b"")).task_id)

    assert (task.priority, task.timeout_ms, task.max_retries) == (100, 300_000, 3)
    assert task.state == "pending"


def test_task_ids_are_positive_and_increase_with_each_submit(engine: Engine) -> None:
    ids = [submit(engine) for _ in range(5)]

    assert ids[0] > 0
    assert ids == sorted(set(ids))


def test_submit_with_a_delay_stores_a_scheduled_task_due_after_it(
    engine: Engine,
) -> None:
    task_id = submit(engine, delay_ms=2_500)

    task = engine.get(task_id)
    assert (task.state, task.run_at_ms) == ("scheduled", T0 + 2_500)


def test_submit_many_returns_one_result_per_task_in_order(engine: Engine) -> None:
    tasks = [NewTask("batch", bytes([i]), priority=i) for i in range(10)]

    results = engine.submit_many(tasks)

    assert [r.created for r in results] == [True] * 10
    ids = [r.task_id for r in results]
    assert ids == sorted(set(ids))
    assert [engine.get(i).payload for i in ids] == [bytes([i]) for i in range(10)]
    assert [engine.get(i).priority for i in ids] == list(range(10))


def test_submit_with_a_held_idempotency_key_returns_the_existing_task(
    engine: Engine,
) -> None:
    first = engine.submit(NewTask("job", b"first", idempotency_key="order-17"))
    again = engine.submit(NewTask("job", b"second", idempotency_key="order-17"))
    other = engine.submit(NewTask("job", b"third", idempotency_key="order-18"))

    assert first.created
    assert (again.task_id, again.created) == (first.task_id, False)
    assert other.created
    assert other.task_id != first.task_id
    assert engine.get(first.task_id).payload == b"first"
    assert engine.get(first.task_id).idempotency_key == "order-17"
    assert nonzero(engine.counts().by_state) == {"pending": 2}


def test_a_repeated_idempotency_key_within_one_batch_creates_one_task(
    engine: Engine,
) -> None:
    results = engine.submit_many(
        [
            NewTask("job", b"a", idempotency_key="k"),
            NewTask("job", b"b", idempotency_key="k"),
        ]
    )

    assert [r.created for r in results] == [True, False]
    assert results[0].task_id == results[1].task_id
    assert nonzero(engine.counts().by_state) == {"pending": 1}


def test_get_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.get(987_654)


BAD_REQUESTS: list[tuple[str, str | None, Callable[[Engine], object]]] = [
    ("priority", "300", lambda e: e.submit(NewTask("job", b"", priority=300))),
    ("priority", "256", lambda e: e.submit(NewTask("job", b"", priority=256))),
    ("priority", "-1", lambda e: e.submit(NewTask("job", b"", priority=-1))),
    ("delay_ms", "-5", lambda e: e.submit(NewTask("job", b"", delay_ms=-5))),
    ("task_type", None, lambda e: e.submit(NewTask("", b""))),
    ("priority", "300", lambda e: e.submit_many([NewTask("job", b"", priority=300)])),
    ("state", "sleeping", lambda e: e.list_tasks("sleeping")),
]


@pytest.mark.parametrize(("field", "value", "call"), BAD_REQUESTS)
def test_a_bad_argument_raises_bad_request_naming_the_field_and_value(
    engine: Engine, field: str, value: str | None, call: Callable[[Engine], object]
) -> None:
    with pytest.raises(BadRequest) as raised:
        call(engine)

    assert field in str(raised.value)
    if value is not None:
        assert value in str(raised.value)
    assert nonzero(engine.counts().by_state) == {}


# Claim order and leases


def test_claim_hands_out_higher_priority_first_and_fifo_within_one(
    engine: Engine,
) -> None:
    low_1 = submit(engine, priority=5)
    high_1 = submit(engine, priority=200)
    low_2 = submit(engine, priority=5)
    mid = submit(engine, priority=100)
    high_2 = submit(engine, priority=200)

    claimed = engine.claim("w1", 10)

    assert [c.task_id for c in claimed] == [high_1, high_2, mid, low_1, low_2]


def test_fifo_follows_the_order_tasks_became_pending(
    engine: Engine, clock: ManualClock
) -> None:
    delayed = submit(engine, delay_ms=100)
    early = submit(engine)
    clock.advance(100)
    assert engine.promote_due() == 1
    late = submit(engine)

    assert [c.task_id for c in engine.claim("w1", 3)] == [early, delayed, late]


def test_a_retried_task_goes_behind_tasks_already_pending(
    engine: Engine, clock: ManualClock
) -> None:
    first = submit(engine)
    lease = claim_one(engine).lease_id
    second = submit(engine)
    engine.fail(first, lease, "boom", T0 + 10)
    clock.advance(10)
    assert engine.promote_due() == 1
    third = submit(engine)

    assert [c.task_id for c in engine.claim("w1", 3)] == [second, first, third]


@PROPERTY_SETTINGS
@given(
    priorities=st.lists(st.integers(0, 255), min_size=1, max_size=30),
    batch=st.integers(1, 7),
)
def test_claims_in_any_batch_size_follow_priority_then_submission_order(
    tmp_path_factory: pytest.TempPathFactory, priorities: list[int], batch: int
) -> None:
    path = tmp_path_factory.mktemp("order")
    with Engine(str(path), clock=ManualClock(T0)) as engine:
        results = engine.submit_many(
            [NewTask("job", b"", priority=p) for p in priorities]
        )
        ids = [r.task_id for r in results]
        expected = [
            ids[i] for i in sorted(range(len(ids)), key=lambda i: -priorities[i])
        ]

        claimed: list[int] = []
        while chunk := engine.claim("w1", batch):
            assert len(chunk) <= batch
            claimed.extend(c.task_id for c in chunk)

    assert claimed == expected


def test_claim_returns_at_most_max_tasks_and_nothing_when_none_is_ready(
    engine: Engine,
) -> None:
    for _ in range(3):
        submit(engine)

    assert len(engine.claim("w1", 2)) == 2
    assert len(engine.claim("w1", 2)) == 1
    assert engine.claim("w1", 2) == []


def test_claim_only_hands_out_the_requested_task_types(engine: Engine) -> None:
    email = submit(engine, "email", priority=1)
    submit(engine, "resize", priority=255)
    sms = submit(engine, "sms", priority=2)

    claimed = engine.claim("w1", 10, ["email", "sms"])

    assert [c.task_id for c in claimed] == [sms, email]
    assert nonzero(engine.counts().by_state) == {"in_progress": 2, "pending": 1}


def test_claim_creates_a_lease_until_now_plus_timeout_plus_grace(
    engine: Engine,
) -> None:
    task_id = engine.submit(
        NewTask("job", b"data", priority=42, timeout_ms=5_000, max_retries=4)
    ).task_id

    (claimed,) = engine.claim("worker-a", 1, lease_grace_ms=250)

    assert (claimed.task_id, claimed.task_type, claimed.payload) == (
        task_id,
        "job",
        b"data",
    )
    assert (claimed.priority, claimed.attempt, claimed.max_retries) == (42, 1, 4)
    assert (claimed.timeout_ms, claimed.submitted_ms) == (5_000, T0)
    assert claimed.lease_id > 0
    assert claimed.deadline_ms == T0 + 5_000 + 250
    task = engine.get(task_id)
    assert (task.state, task.attempts, task.lease_id) == (
        "in_progress",
        1,
        claimed.lease_id,
    )
    assert (task.worker_id, task.lease_deadline_ms) == ("worker-a", T0 + 5_250)
    assert [
        (a.attempt, a.worker_id, a.started_ms, a.ended_ms, a.outcome)
        for a in task.history
    ] == [(1, "worker-a", T0, None, "running")]


def test_every_claim_creates_a_new_lease_id(engine: Engine, clock: ManualClock) -> None:
    for _ in range(5):
        submit(engine)
    leases = [c.lease_id for c in engine.claim("w1", 5)]
    task_id = submit(engine)
    for _ in range(3):
        lease = claim_one(engine).lease_id
        engine.fail(task_id, lease, "again", clock.now_ms() + 1)
        clock.advance(1)
        leases.append(lease)

    assert len(set(leases)) == len(leases)
    assert engine.get(task_id).attempts == 3


def test_a_leased_task_is_not_claimed_again(engine: Engine) -> None:
    submit(engine)
    claim_one(engine)

    assert engine.claim("w2", 10) == []


def test_a_scheduled_task_is_not_claimable_before_its_run_at(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine, delay_ms=1_000)
    clock.advance(999)

    assert engine.claim("w1", 1) == []
    assert engine.get(task_id).state == "scheduled"


def test_claim_promotes_due_scheduled_tasks_itself(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine, delay_ms=1_000)
    clock.advance(1_000)

    assert [c.task_id for c in engine.claim("w1", 1)] == [task_id]


def test_promote_due_moves_only_due_tasks_and_returns_how_many(
    engine: Engine, clock: ManualClock
) -> None:
    due_a = submit(engine, delay_ms=100)
    due_b = submit(engine, delay_ms=200)
    later = submit(engine, delay_ms=201)
    clock.advance(200)

    assert engine.promote_due() == 2
    assert [engine.get(i).state for i in (due_a, due_b, later)] == [
        "pending",
        "pending",
        "scheduled",
    ]
    assert engine.promote_due() == 0


def test_promote_due_stops_at_its_limit(engine: Engine, clock: ManualClock) -> None:
    for delay in (10, 20, 30):
        submit(engine, delay_ms=delay)
    clock.advance(30)

    assert engine.promote_due(limit=2) == 2
    assert engine.promote_due(limit=2) == 1
    assert nonzero(engine.counts().by_state) == {"pending": 3}


def test_promote_due_with_a_limit_takes_the_earliest_due_first(
    engine: Engine, clock: ManualClock
) -> None:
    ids = [submit(engine, delay_ms=delay) for delay in (30, 10, 20)]
    clock.advance(30)

    assert engine.promote_due(limit=1) == 1

    assert [engine.get(i).state for i in ids] == ["scheduled", "pending", "scheduled"]
    assert [c.task_id for c in engine.claim("w1", 3)] == [ids[1], ids[2], ids[0]]


def test_a_large_payload_and_result_round_trip_unchanged(engine: Engine) -> None:
    payload = bytes(range(256)) * 40_960
    task_id = submit(engine, payload=payload)
    claimed = claim_one(engine)

    engine.ack(task_id, claimed.lease_id, payload[::-1])

    assert claimed.payload == payload
    task = engine.get(task_id)
    assert (task.payload, task.result) == (payload, payload[::-1])


def test_claims_from_many_threads_never_hand_out_a_task_twice(
    engine: Engine,
) -> None:
    ids = {r.task_id for r in engine.submit_many([NewTask("job", b"")] * 600)}
    claimed: list[list[ClaimedTask]] = [[] for _ in range(6)]

    def drain(mine: list[ClaimedTask]) -> None:
        while batch := engine.claim("w1", 7):
            mine.extend(batch)

    threads = [threading.Thread(target=drain, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    got = [c for mine in claimed for c in mine]
    assert sorted(c.task_id for c in got) == sorted(ids)
    assert len({c.lease_id for c in got}) == len(got)
    assert nonzero(engine.counts().by_state) == {"in_progress": 600}


def test_submits_from_many_threads_get_distinct_ids(engine: Engine) -> None:
    results: list[list[int]] = [[] for _ in range(4)]

    def submit_some(mine: list[int]) -> None:
        mine.extend(submit(engine) for _ in range(100))

    threads = [threading.Thread(target=submit_some, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [i for mine in results for i in mine]
    assert len(set(ids)) == 400
    assert engine.counts().by_state["pending"] == 400


# Ack


def test_ack_completes_the_task_with_its_result(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id
    clock.advance(40)

    engine.ack(task_id, lease, b"the result")

    task = engine.get(task_id)
    assert (task.state, task.result, task.finished_ms) == (
        "completed",
        b"the result",
        T0 + 40,
    )
    assert [(a.outcome, a.ended_ms, a.error) for a in task.history] == [
        ("completed", T0 + 40, None)
    ]
    assert engine.expired_leases() == []
    assert engine.worker_leases("w1") == []


def test_ack_with_a_superseded_lease_raises_stale_lease_and_changes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    old = claim_one(engine).lease_id
    engine.fail(task_id, old, "timed out", T0 + 5)
    clock.advance(5)
    current = claim_one(engine).lease_id
    before = snapshot(engine.get(task_id))

    with pytest.raises(StaleLease):
        engine.ack(task_id, old, b"late")

    assert snapshot(engine.get(task_id)) == before
    assert before["lease_id"] == current


def test_a_second_ack_raises_stale_lease_and_keeps_the_first_result(
    engine: Engine,
) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id
    engine.ack(task_id, lease, b"first")
    before = snapshot(engine.get(task_id))

    with pytest.raises(StaleLease):
        engine.ack(task_id, lease, b"second")

    assert snapshot(engine.get(task_id)) == before


def test_ack_with_a_lease_id_never_issued_raises_stale_lease(engine: Engine) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id

    with pytest.raises(StaleLease):
        engine.ack(task_id, lease + 1_000_000)

    assert engine.get(task_id).state == "in_progress"


def test_ack_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.ack(424_242, 1)


# Fail, history and retries


def test_fail_with_a_retry_time_parks_the_task_in_failed_until_then(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id

    assert engine.fail(task_id, lease, "connection reset", T0 + 500) == "failed"

    task = engine.get(task_id)
    assert (task.state, task.run_at_ms, task.attempts) == ("failed", T0 + 500, 1)
    assert task.last_error == "connection reset"
    clock.advance(499)
    assert engine.claim("w1", 1) == []
    clock.advance(1)
    (again,) = engine.claim("w2", 1)
    assert (again.task_id, again.attempt) == (task_id, 2)
    assert again.lease_id != lease


def test_fail_without_a_retry_time_dead_letters_the_task(engine: Engine) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id

    assert engine.fail(task_id, lease, "bad payload") == "dead_letter"

    task = engine.get(task_id)
    assert (task.state, task.last_error) == ("dead_letter", "bad payload")
    assert engine.claim("w1", 1) == []


def test_fail_with_a_stale_lease_raises_stale_lease_and_changes_nothing(
    engine: Engine,
) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id
    engine.ack(task_id, lease, b"ok")
    before = snapshot(engine.get(task_id))

    with pytest.raises(StaleLease):
        engine.fail(task_id, lease, "late failure")

    assert snapshot(engine.get(task_id)) == before


def test_fail_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.fail(424_242, 1, "nothing")


def test_history_records_each_attempt_with_its_worker_times_and_error(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    for n, worker in enumerate(("w1", "w2"), start=1):
        lease = claim_one(engine, worker).lease_id
        clock.advance(10)
        engine.fail(task_id, lease, f"boom {n}", clock.now_ms() + 100)
        clock.advance(100)
    lease = claim_one(engine, "w3").lease_id
    clock.advance(10)
    engine.ack(task_id, lease, b"ok")

    task = engine.get(task_id)
    history = [
        (a.attempt, a.worker_id, a.started_ms, a.ended_ms, a.outcome, a.error)
        for a in task.history
    ]
    assert history == [
        (1, "w1", T0, T0 + 10, "failed", "boom 1"),
        (2, "w2", T0 + 110, T0 + 120, "failed", "boom 2"),
        (3, "w3", T0 + 220, T0 + 230, "completed", None),
    ]
    assert (task.attempts, task.last_error) == (3, "boom 2")


# Extend, expired leases and worker leases


def test_extend_moves_the_lease_deadline_and_reports_no_cancel(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    claimed = claim_one(engine)

    assert engine.extend(task_id, claimed.lease_id, T0 + 10_000) is False

    assert engine.get(task_id).lease_deadline_ms == T0 + 10_000
    clock.set(claimed.deadline_ms + 1)
    assert engine.expired_leases() == []
    clock.set(T0 + 10_001)
    assert [lease.deadline_ms for lease in engine.expired_leases()] == [T0 + 10_000]


def test_extend_with_a_stale_lease_raises_stale_lease_and_changes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    old = claim_one(engine).lease_id
    engine.fail(task_id, old, "boom", T0 + 1)
    clock.advance(1)
    claim_one(engine)
    before = snapshot(engine.get(task_id))

    with pytest.raises(StaleLease):
        engine.extend(task_id, old, T0 + 99_999)

    assert snapshot(engine.get(task_id)) == before


def test_extend_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.extend(424_242, 1, T0)


def test_an_expired_lease_is_listed_only_after_its_deadline(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = engine.submit(
        NewTask("mail", b"", timeout_ms=1_000, max_retries=5)
    ).task_id
    clock.advance(7)
    claimed = claim_one(engine, "w9")
    clock.set(claimed.deadline_ms - 1)
    assert engine.expired_leases() == []

    clock.set(claimed.deadline_ms + 1)

    (lease,) = engine.expired_leases()
    assert (lease.task_id, lease.lease_id, lease.worker_id) == (
        task_id,
        claimed.lease_id,
        "w9",
    )
    assert (lease.deadline_ms, lease.claimed_ms) == (T0 + 1_007, T0 + 7)
    assert (lease.task_type, lease.attempt, lease.max_retries) == ("mail", 1, 5)


def test_expired_leases_come_earliest_deadline_first_up_to_the_limit(
    engine: Engine, clock: ManualClock
) -> None:
    deadlines = []
    for _ in range(4):
        submit(engine)
        deadlines.append(claim_one(engine).deadline_ms)
        clock.advance(10)
    clock.set(max(deadlines) + 1)

    assert [lease.deadline_ms for lease in engine.expired_leases()] == deadlines
    assert [lease.deadline_ms for lease in engine.expired_leases(limit=2)] == deadlines[
        :2
    ]


def test_failing_an_expired_lease_makes_the_task_claimable_again(
    engine: Engine, clock: ManualClock
) -> None:
    task_id = submit(engine)
    claim_one(engine)
    clock.advance(TIMEOUT_MS + 1)
    (lease,) = engine.expired_leases()

    retry_at = clock.now_ms() + 1
    assert engine.fail(lease.task_id, lease.lease_id, "expired", retry_at) == "failed"

    assert engine.expired_leases() == []
    clock.advance(1)
    assert [c.task_id for c in engine.claim("w2", 1)] == [task_id]


def test_worker_leases_lists_only_that_workers_current_leases(engine: Engine) -> None:
    for _ in range(3):
        submit(engine)
    mine = {c.lease_id for c in engine.claim("mine", 2)}
    theirs = claim_one(engine, "theirs")

    assert {lease.lease_id for lease in engine.worker_leases("mine")} == mine
    assert [
        (lease.lease_id, lease.claimed_ms) for lease in engine.worker_leases("theirs")
    ] == [(theirs.lease_id, T0)]
    engine.ack(theirs.task_id, theirs.lease_id)
    assert engine.worker_leases("theirs") == []
    assert engine.worker_leases("nobody") == []


# Cancel


@pytest.mark.parametrize("state", ["scheduled", "pending", "failed"])
def test_cancel_of_a_waiting_task_cancels_it(
    engine: Engine, clock: ManualClock, state: str
) -> None:
    task_id = put_in_state(engine, state)
    clock.advance(5)

    assert engine.cancel(task_id) == "cancelled"

    task = engine.get(task_id)
    assert (task.state, task.finished_ms) == ("cancelled", T0 + 5)
    clock.advance(DELAY_MS + RETRY_MS)
    assert engine.promote_due() == 0
    assert engine.claim("w1", 10) == []
    assert nonzero(engine.counts().by_state) == {"cancelled": 1}


def test_cancel_of_a_running_task_only_flags_it_for_its_worker(
    engine: Engine,
) -> None:
    task_id = submit(engine)
    lease = claim_one(engine).lease_id

    assert engine.cancel(task_id) == "in_progress"

    task = engine.get(task_id)
    assert (task.state, task.cancel_requested, task.lease_id) == (
        "in_progress",
        True,
        lease,
    )
    assert engine.extend(task_id, lease, T0 + 5_000) is True
    engine.ack(task_id, lease, b"finished anyway")
    assert engine.get(task_id).state == "completed"


@pytest.mark.parametrize("state", ["completed", "dead_letter"])
def test_cancel_of_a_finished_task_raises_invalid_state(
    engine: Engine, state: str
) -> None:
    task_id = put_in_state(engine, state)
    before = snapshot(engine.get(task_id))

    with pytest.raises(InvalidState):
        engine.cancel(task_id)

    assert snapshot(engine.get(task_id)) == before


def test_cancel_of_an_unknown_task_raises_task_not_found(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        engine.cancel(424_242)


# Commit


def test_commit_returns_one_result_per_operation_and_applies_the_rest_on_error(
    engine: Engine, clock: ManualClock
) -> None:
    running = submit(engine, priority=200)
    lease = claim_one(engine).lease_id
    dead = put_in_state(engine, "dead_letter")
    waiting = submit(engine, priority=10)
    submit(engine, delay_ms=100)
    clock.advance(100)

    results = engine.commit(
        [
            PromoteDue(),
            Extend(running, lease, T0 + 50_000),
            Ack(running, lease + 1_000_000, b"wrong lease"),
            Submit(NewTask("job", b"new", priority=5)),
            Cancel(424_242),
            Requeue(dead),
            Cancel(waiting),
            Ack(running, lease, b"done"),
            Fail(running, lease, "after ack"),
        ]
    )

    assert len(results) == 9
    assert results[0] == 1
    assert results[1] is False
    assert isinstance(results[2], StaleLease)
    assert isinstance(results[3], Submitted)
    assert results[3].created
    assert isinstance(results[4], TaskNotFound)
    assert results[5] is None
    assert results[6] == "cancelled"
    assert results[7] is None
    assert isinstance(results[8], StaleLease)
    assert engine.get(running).result == b"done"
    assert engine.get(dead).state == "pending"
    assert engine.get(results[3].task_id).payload == b"new"
    assert nonzero(engine.counts().by_state) == {
        "completed": 1,
        "pending": 3,
        "cancelled": 1,
    }


def test_commit_applies_its_operations_in_order(engine: Engine) -> None:
    results = engine.commit(
        [Submit(NewTask("job", b"a")), Claim("w1", 5), Fail(424_242, 1, "nothing")]
    )

    submitted, claimed, failed = results
    assert isinstance(submitted, Submitted)
    assert isinstance(claimed, list)
    assert [c.task_id for c in claimed if isinstance(c, ClaimedTask)] == [
        submitted.task_id
    ]
    assert isinstance(failed, TaskNotFound)
    assert engine.get(submitted.task_id).state == "in_progress"


def test_commit_of_no_operations_returns_an_empty_list(engine: Engine) -> None:
    assert engine.commit([]) == []
