//! Helpers shared by the engine's integration tests.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use _core::{Engine, ManualClock, NewTask, Op, OpOutput};

/// A fresh engine on a temp dir with a manual clock at 1,000,000 ms.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub engine: Engine,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(1_000_000);
        let engine = open(&dir, &clock);
        Self { dir, clock, engine }
    }

    /// Close the engine and open the same dir again.
    pub fn reopen(&mut self) {
        self.engine.close();
        self.engine = open(&self.dir, &self.clock);
    }

    pub fn submit(&self, task_type: &str, priority: u8) -> u64 {
        self.submit_task(task(task_type, priority))
    }

    pub fn submit_task(&self, new_task: NewTask) -> u64 {
        match self.engine.execute(Op::Submit(new_task)).expect("submit") {
            OpOutput::Submitted { task_id, .. } => task_id,
            other => panic!("unexpected output {other:?}"),
        }
    }

    pub fn claim(&self, max_tasks: usize) -> Vec<_core::ClaimedTask> {
        let op = Op::Claim {
            worker_id: "w1".to_owned(),
            max_tasks,
            task_types: None,
            lease_grace_ms: 0,
        };
        match self.engine.execute(op).expect("claim") {
            OpOutput::Claimed(tasks) => tasks,
            other => panic!("unexpected output {other:?}"),
        }
    }
}

pub fn open(dir: &tempfile::TempDir, clock: &ManualClock) -> Engine {
    try_open(dir, clock).expect("open engine")
}

pub fn try_open(dir: &tempfile::TempDir, clock: &ManualClock) -> _core::Result<Engine> {
    let path = dir.path().to_str().expect("utf-8 path");
    Engine::open(path, false, Arc::new(clock.clone()))
}

pub fn task(task_type: &str, priority: u8) -> NewTask {
    NewTask {
        task_type: task_type.to_owned(),
        payload: format!("payload of {task_type}").into_bytes(),
        priority,
        delay_ms: 0,
        timeout_ms: 30_000,
        max_retries: 3,
        idempotency_key: None,
    }
}
