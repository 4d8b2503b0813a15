//! Behaviour of each engine operation, through the public Rust API.

mod common;

use _core::{EngineError, Op, OpOutput, State};
use common::{task, Fixture};

#[test]
fn claims_come_out_by_priority_then_fifo() {
    let fx = Fixture::new();
    let low = fx.submit("a", 10);
    let high_first = fx.submit("a", 200);
    let high_second = fx.submit("b", 200);
    let normal = fx.submit("b", 150);
    let order: Vec<u64> = fx.claim(10).iter().map(|t| t.task_id).collect();
    assert_eq!(order, vec![high_first, high_second, normal, low]);
}

#[test]
fn claim_with_types_leases_only_those_types() {
    let fx = Fixture::new();
    fx.submit("a", 250);
    let wanted = fx.submit("b", 1);
    let op = Op::Claim {
        worker_id: "w".to_owned(),
        max_tasks: 5,
        task_types: Some(vec!["b".to_owned(), "never-seen".to_owned()]),
        lease_grace_ms: 0,
    };
    let OpOutput::Claimed(tasks) = fx.engine.execute(op).unwrap() else {
        panic!("claim returns tasks");
    };
    assert_eq!(
        tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
        vec![wanted]
    );
}

#[test]
fn claimed_task_carries_payload_lease_and_deadline() {
    let fx = Fixture::new();
    let id = fx.submit("echo", 100);
    let claimed = fx.claim(1).pop().unwrap();
    assert_eq!(claimed.task_id, id);
    assert_eq!(claimed.payload, b"payload of echo");
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.deadline_ms, fx.clock_now() + 30_000);
}

#[test]
fn ack_with_stale_lease_is_rejected_and_changes_nothing() {
    let fx = Fixture::new();
    let id = fx.submit("a", 1);
    let first = fx.claim(1).pop().unwrap();
    fx.engine
        .execute(fail(id, first.lease_id, Some(fx.clock_now())))
        .unwrap();
    let second = fx.claim(1).pop().unwrap();
    assert_ne!(first.lease_id, second.lease_id);
    let stale = fx.engine.execute(ack(id, first.lease_id));
    assert!(
        matches!(stale, Err(EngineError::StaleLease { .. })),
        "{stale:?}"
    );
    let stored = fx.engine.get(id).unwrap().record;
    assert_eq!(stored.state, State::InProgress);
    assert_eq!(stored.lease.unwrap().lease_id, second.lease_id);
}

#[test]
fn fail_without_retry_dead_letters_and_keeps_every_error() {
    let fx = Fixture::new();
    let id = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    fx.engine
        .execute(fail(id, lease, Some(fx.clock_now())))
        .unwrap();
    let lease = fx.claim(1).pop().unwrap().lease_id;
    let out = fx.engine.execute(fail(id, lease, None)).unwrap();
    assert_eq!(out, OpOutput::State(State::DeadLetter));
    let record = fx.engine.get(id).unwrap().record;
    assert_eq!(record.history.len(), 2);
    assert!(record
        .history
        .iter()
        .all(|a| a.error.as_deref() == Some("boom")));
}

#[test]
fn failed_task_waits_for_its_retry_time() {
    let fx = Fixture::new();
    let id = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    let retry_at = fx.clock_now() + 500;
    fx.engine.execute(fail(id, lease, Some(retry_at))).unwrap();
    assert!(fx.claim(1).is_empty());
    assert_eq!(fx.engine.next_due_ms().unwrap(), Some(retry_at));
    fx.clock.advance(500);
    assert_eq!(fx.claim(1).pop().unwrap().attempt, 2);
}

#[test]
fn delayed_task_becomes_pending_at_its_time() {
    let fx = Fixture::new();
    let mut delayed = task("a", 1);
    delayed.delay_ms = 1_000;
    let id = fx.submit_task(delayed);
    assert_eq!(fx.engine.get(id).unwrap().record.state, State::Scheduled);
    fx.clock.advance(999);
    assert!(fx.claim(1).is_empty());
    fx.clock.advance(1);
    assert_eq!(fx.claim(1).pop().unwrap().task_id, id);
}

#[test]
fn reopen_keeps_leases_so_the_old_lease_can_ack() {
    let mut fx = Fixture::new();
    let id = fx.submit("a", 1);
    let pending = fx.submit("a", 1);
    let claimed = fx.claim(1).pop().unwrap();
    fx.reopen();
    let leases = fx.engine.expired_leases(10).unwrap();
    assert!(leases.is_empty());
    fx.clock.advance(30_000);
    let expired = fx.engine.expired_leases(10).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].lease_id, claimed.lease_id);
    fx.engine.execute(ack(id, claimed.lease_id)).unwrap();
    assert_eq!(fx.claim(5).pop().unwrap().task_id, pending);
}

#[test]
fn reopen_gives_fresh_ids_and_lease_ids() {
    let mut fx = Fixture::new();
    let first = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    fx.reopen();
    let second = fx.submit("a", 1);
    assert!(second > first);
    assert!(fx.claim(1).pop().unwrap().lease_id > lease);
}

#[test]
fn idempotency_key_returns_the_existing_task() {
    let fx = Fixture::new();
    let mut keyed = task("a", 1);
    keyed.idempotency_key = Some("k".to_owned());
    let first = fx.engine.execute(Op::Submit(keyed.clone())).unwrap();
    let again = fx.engine.execute(Op::Submit(keyed)).unwrap();
    let OpOutput::Submitted {
        task_id,
        created: true,
    } = first
    else {
        panic!("first submit creates");
    };
    assert_eq!(
        again,
        OpOutput::Submitted {
            task_id,
            created: false
        }
    );
}

#[test]
fn cancel_of_in_progress_task_is_requested_and_seen_by_extend() {
    let fx = Fixture::new();
    let id = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    let out = fx.engine.execute(Op::Cancel { task_id: id }).unwrap();
    assert_eq!(out, OpOutput::State(State::InProgress));
    let extend = Op::Extend {
        task_id: id,
        lease_id: lease,
        deadline_ms: fx.clock_now() + 60_000,
    };
    assert_eq!(
        fx.engine.execute(extend).unwrap(),
        OpOutput::CancelRequested(true)
    );
}

#[test]
fn cancel_of_completed_task_is_refused() {
    let fx = Fixture::new();
    let id = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    fx.engine.execute(ack(id, lease)).unwrap();
    let refused = fx.engine.execute(Op::Cancel { task_id: id });
    assert!(
        matches!(refused, Err(EngineError::InvalidState { .. })),
        "{refused:?}"
    );
}

#[test]
fn commit_applies_the_good_ops_and_reports_the_bad_one() {
    let fx = Fixture::new();
    let results = fx
        .engine
        .commit(vec![
            Op::Submit(task("a", 1)),
            Op::Cancel { task_id: 999 },
            Op::Submit(task("a", 2)),
        ])
        .unwrap();
    assert!(matches!(
        results[1],
        Err(EngineError::NotFound { task_id: 999 })
    ));
    assert_eq!(fx.engine.counts().unwrap().by_state["pending"], 2);
}

#[test]
fn sweep_deletes_old_completed_tasks_and_their_counts() {
    let mut fx = Fixture::new();
    let id = fx.submit("a", 1);
    let lease = fx.claim(1).pop().unwrap().lease_id;
    fx.engine.execute(ack(id, lease)).unwrap();
    fx.reopen();
    assert_eq!(fx.engine.counts().unwrap().by_state["completed"], 1);
    let sweep = Op::Sweep {
        completed_before_ms: fx.clock_now() + 1,
        dead_letter_before_ms: 0,
        limit: 100,
    };
    assert_eq!(fx.engine.execute(sweep).unwrap(), OpOutput::Count(1));
    assert!(matches!(
        fx.engine.get(id),
        Err(EngineError::NotFound { .. })
    ));
    fx.reopen();
    assert_eq!(fx.engine.counts().unwrap().by_state["completed"], 0);
}

#[test]
fn opening_an_open_dir_reports_it_is_locked() {
    let fx = Fixture::new();
    let again = common::try_open(&fx.dir, &fx.clock);
    assert!(
        matches!(again, Err(EngineError::Locked { .. })),
        "{:?}",
        again.err()
    );
}

#[test]
fn closed_engine_refuses_calls() {
    let fx = Fixture::new();
    fx.engine.close();
    assert!(matches!(fx.engine.counts(), Err(EngineError::Closed)));
}

#[test]
fn list_pages_through_a_state_with_a_cursor() {
    let fx = Fixture::new();
    let ids: Vec<u64> = (0..5).map(|_| fx.submit("a", 7)).collect();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = fx
            .engine
            .list(State::Pending, None, 2, cursor.as_deref())
            .unwrap();
        seen.extend(page.tasks.iter().map(|t| t.record.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

fn ack(task_id: u64, lease_id: u64) -> Op {
    Op::Ack {
        task_id,
        lease_id,
        result: b"done".to_vec(),
    }
}

fn fail(task_id: u64, lease_id: u64, retry_at_ms: Option<u64>) -> Op {
    Op::Fail {
        task_id,
        lease_id,
        error: "boom".to_owned(),
        retry_at_ms,
    }
}

impl Fixture {
    fn clock_now(&self) -> u64 {
        use _core::Clock;
        self.clock.now_ms()
    }
}
