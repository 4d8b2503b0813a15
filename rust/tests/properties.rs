//! Property tests: random operation sequences against a reference model.
//!
//! The model keeps each task's state and FIFO place; after every step the
//! engine's claims must match the model's priority-then-FIFO order, no task may
//! be claimed while leased, and counts must agree — also across reopen.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use _core::{Clock, Op, OpOutput};
use common::{task, Fixture};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Submit {
        priority: u8,
        delay_ms: u64,
    },
    Claim {
        max_tasks: usize,
    },
    Ack {
        pick: usize,
    },
    Fail {
        pick: usize,
        retry_in_ms: Option<u64>,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            prop::sample::select(vec![0u8, 100, 150, 255]),
            prop::sample::select(vec![0u64, 0, 50]),
        )
            .prop_map(|(priority, delay_ms)| Step::Submit { priority, delay_ms }),
        3 => (1usize..4).prop_map(|max_tasks| Step::Claim { max_tasks }),
        2 => any::<usize>().prop_map(|pick| Step::Ack { pick }),
        2 => (any::<usize>(), prop::option::of(0u64..100))
            .prop_map(|(pick, retry_in_ms)| Step::Fail { pick, retry_in_ms }),
        1 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
        1 => (1u64..120).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Delayed { due_ms: u64 },
    Pending { seq: u64 },
    Leased { lease_id: u64 },
    Finished(&'static str),
}

#[derive(Debug, Default)]
struct Model {
    tasks: BTreeMap<u64, (u8, Where)>,
    cancel_requested: BTreeSet<u64>,
    next_seq: u64,
}

impl Model {
    fn promote_due(&mut self, now_ms: u64) {
        let mut due: Vec<(u64, u64)> = self
            .tasks
            .iter()
            .filter_map(|(id, (_, at))| match at {
                Where::Delayed { due_ms } if *due_ms <= now_ms => Some((*due_ms, *id)),
                _ => None,
            })
            .collect();
        due.sort_unstable();
        for (_, id) in due {
            let seq = self.take_seq();
            self.tasks.get_mut(&id).unwrap().1 = Where::Pending { seq };
        }
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn expected_claim(&self, max_tasks: usize) -> Vec<u64> {
        let mut ready: Vec<(u8, u64, u64)> = self
            .tasks
            .iter()
            .filter_map(|(id, (priority, at))| match at {
                Where::Pending { seq } => Some((u8::MAX - priority, *seq, *id)),
                _ => None,
            })
            .collect();
        ready.sort_unstable();
        ready
            .into_iter()
            .take(max_tasks)
            .map(|(_, _, id)| id)
            .collect()
    }

    fn leased(&self) -> Vec<(u64, u64)> {
        self.tasks
            .iter()
            .filter_map(|(id, (_, at))| match at {
                Where::Leased { lease_id } => Some((*id, *lease_id)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, state: &str) -> u64 {
        self.tasks
            .values()
            .filter(|(_, at)| state_name(at) == state)
            .count() as u64
    }
}

fn state_name(at: &Where) -> &'static str {
    match at {
        Where::Delayed { .. } => "delayed",
        Where::Pending { .. } => "pending",
        Where::Leased { .. } => "in_progress",
        Where::Finished(state) => state,
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut fx = Fixture::new();
    let mut model = Model::default();
    for step in steps {
        let now = fx.clock.now_ms();
        match step {
            Step::Submit { priority, delay_ms } => {
                let mut new_task = task("t", priority);
                new_task.delay_ms = delay_ms;
                let id = fx.submit_task(new_task);
                let at = if delay_ms > 0 {
                    Where::Delayed {
                        due_ms: now + delay_ms,
                    }
                } else {
                    Where::Pending {
                        seq: model.take_seq(),
                    }
                };
                model.tasks.insert(id, (priority, at));
            }
            Step::Claim { max_tasks } => {
                model.promote_due(now);
                let expected = model.expected_claim(max_tasks);
                let claimed = fx.claim(max_tasks);
                let got: Vec<u64> = claimed.iter().map(|t| t.task_id).collect();
                prop_assert_eq!(&got, &expected, "claim order");
                for claimed_task in claimed {
                    let entry = model.tasks.get_mut(&claimed_task.task_id).unwrap();
                    prop_assert!(!matches!(entry.1, Where::Leased { .. }), "claimed twice");
                    entry.1 = Where::Leased {
                        lease_id: claimed_task.lease_id,
                    };
                }
            }
            Step::Ack { pick } => {
                let leased = model.leased();
                if let Some(&(id, lease_id)) = leased.get(pick % leased.len().max(1)) {
                    let op = Op::Ack {
                        task_id: id,
                        lease_id,
                        result: Vec::new(),
                    };
                    fx.engine.execute(op).unwrap();
                    model.cancel_requested.remove(&id);
                    model.tasks.get_mut(&id).unwrap().1 = Where::Finished("completed");
                }
            }
            Step::Fail { pick, retry_in_ms } => {
                let leased = model.leased();
                if let Some(&(id, lease_id)) = leased.get(pick % leased.len().max(1)) {
                    let retry_at_ms = retry_in_ms.map(|ms| now + ms);
                    let op = Op::Fail {
                        task_id: id,
                        lease_id,
                        error: "e".into(),
                        retry_at_ms,
                    };
                    fx.engine.execute(op).unwrap();
                    // A failed task whose cancel was requested is not retried.
                    let cancelled = model.cancel_requested.remove(&id);
                    model.tasks.get_mut(&id).unwrap().1 = match retry_at_ms {
                        _ if cancelled => Where::Finished("cancelled"),
                        Some(due_ms) => Where::Delayed { due_ms },
                        None => Where::Finished("dead_letter"),
                    };
                }
            }
            Step::Cancel { pick } => {
                let ids: Vec<u64> = model.tasks.keys().copied().collect();
                if let Some(&id) = ids.get(pick % ids.len().max(1)) {
                    let result = fx.engine.execute(Op::Cancel { task_id: id });
                    let entry = model.tasks.get_mut(&id).unwrap();
                    match entry.1 {
                        Where::Finished(_) => prop_assert!(result.is_err()),
                        Where::Leased { .. } => {
                            prop_assert!(result.is_ok());
                            model.cancel_requested.insert(id);
                        }
                        _ => {
                            prop_assert!(result.is_ok());
                            entry.1 = Where::Finished("cancelled");
                        }
                    }
                }
            }
            Step::Advance { ms } => fx.clock.advance(ms),
            Step::Reopen => fx.reopen(),
        }
        check_counts(&fx, &model)?;
    }
    Ok(())
}

fn check_counts(fx: &Fixture, model: &Model) -> Result<(), TestCaseError> {
    let counts = fx.engine.counts().unwrap();
    let by_state = &counts.by_state;
    for state in [
        "pending",
        "in_progress",
        "completed",
        "dead_letter",
        "cancelled",
    ] {
        prop_assert_eq!(by_state[state], model.count(state), "count of {}", state);
    }
    prop_assert_eq!(
        by_state["scheduled"] + by_state["failed"],
        model.count("delayed")
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn engine_matches_the_reference_model(steps in prop::collection::vec(step(), 1..60)) {
        run(steps)?;
    }
}

#[test]
fn submit_output_is_a_new_id_each_time() {
    let fx = Fixture::new();
    let results = fx
        .engine
        .commit((0..100).map(|i| Op::Submit(task("t", i as u8))).collect())
        .unwrap();
    let mut ids: Vec<u64> = results
        .into_iter()
        .map(|result| match result.unwrap() {
            OpOutput::Submitted {
                task_id,
                created: true,
            } => task_id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 100);
}
