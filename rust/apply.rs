//! Applying commands: the one place where tasks change state.
//!
//! A [`Tx`] gathers the effects of many commands into one RocksDB `WriteBatch`
//! while updating the in-memory indexes as it goes, so later commands in the
//! same batch see earlier ones. If the batch then fails to reach disk, the
//! engine throws the indexes away and rebuilds them from the store, so memory
//! never runs ahead of what is durable.

use std::collections::{BTreeSet, HashMap};

use rocksdb::WriteBatch;

use crate::command::{ClaimedTask, Command, Grant, OpOutput};
use crate::error::{EngineError, Result};
use crate::index::Indexes;
use crate::store::{
    count_key, delete_index, put_record, Store, CF_IDEMPOTENCY, CF_META, CF_PAYLOADS, CF_TASKS,
    META_NEXT_LEASE_ID, META_NEXT_READY_SEQ, META_NEXT_TASK_ID,
};
use crate::task::{truncate_error, AttemptRecord, LeaseRecord, Outcome, State, TaskRecord};

/// The engine's mutable state: indexes and id counters.
#[derive(Debug, Default)]
pub struct CoreState {
    /// Every in-memory index.
    pub idx: Indexes,
    /// The next task id to hand out.
    pub next_task_id: u64,
    /// The next FIFO sequence number.
    pub next_ready_seq: u64,
    /// The next lease id.
    pub next_lease_id: u64,
}

impl CoreState {
    /// Take the next task id.
    pub fn take_task_id(&mut self) -> u64 {
        let id = self.next_task_id;
        self.next_task_id += 1;
        id
    }

    /// Take the next FIFO sequence number.
    pub fn take_ready_seq(&mut self) -> u64 {
        let seq = self.next_ready_seq;
        self.next_ready_seq += 1;
        seq
    }

    /// Take the next lease id.
    pub fn take_lease_id(&mut self) -> u64 {
        let id = self.next_lease_id;
        self.next_lease_id += 1;
        id
    }
}

/// A batch of commands being applied.
pub struct Tx<'a> {
    store: &'a Store,
    /// The state the commands change.
    pub state: &'a mut CoreState,
    batch: WriteBatch,
    /// Records as this batch left them; `None` for deleted ones.
    records: HashMap<u64, Option<TaskRecord>>,
    payloads: HashMap<u64, Vec<u8>>,
    dirty_counts: BTreeSet<(State, String)>,
}

impl<'a> Tx<'a> {
    /// Start a batch on `store`.
    pub fn new(store: &'a Store, state: &'a mut CoreState) -> Self {
        Self {
            store,
            state,
            batch: WriteBatch::default(),
            records: HashMap::new(),
            payloads: HashMap::new(),
            dirty_counts: BTreeSet::new(),
        }
    }

    /// The store the batch will be written to.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Finish the batch: add the counters it changed and hand it over for writing.
    pub fn into_batch(mut self) -> WriteBatch {
        let meta = self.store.cf(CF_META);
        for (key, value) in [
            (META_NEXT_TASK_ID, self.state.next_task_id),
            (META_NEXT_READY_SEQ, self.state.next_ready_seq),
            (META_NEXT_LEASE_ID, self.state.next_lease_id),
        ] {
            self.batch.put_cf(meta, key, value.to_be_bytes());
        }
        for (state, task_type) in &self.dirty_counts {
            let count = self.state.idx.count(*state, task_type);
            self.batch
                .put_cf(meta, count_key(*state, task_type), count.to_be_bytes());
        }
        self.batch
    }

    /// A task's record as this batch sees it.
    ///
    /// # Errors
    /// [`EngineError::NotFound`], or a storage error.
    pub fn load(&mut self, task_id: u64) -> Result<TaskRecord> {
        let cached = match self.records.get(&task_id) {
            Some(cached) => cached.clone(),
            None => {
                let stored = self.store.record(task_id)?;
                self.records.insert(task_id, stored.clone());
                stored
            }
        };
        cached.ok_or(EngineError::NotFound { task_id })
    }

    /// Apply one command.
    ///
    /// # Errors
    /// The command's own refusal (stale lease, wrong state, unknown task) or a
    /// storage error; a refused command changes nothing.
    pub fn apply(&mut self, command: Command) -> Result<OpOutput> {
        match command {
            Command::Submit {
                task_id,
                ready_seq,
                now_ms,
                task,
            } => Ok(self.submit(task_id, ready_seq, now_ms, task)),
            Command::Claim {
                worker_id,
                now_ms,
                grants,
            } => self
                .claim(&worker_id, now_ms, grants)
                .map(OpOutput::Claimed),
            Command::Ack {
                task_id,
                lease_id,
                now_ms,
                result,
            } => self.ack(task_id, lease_id, now_ms, result),
            Command::Fail {
                task_id,
                lease_id,
                now_ms,
                error,
                retry_at_ms,
            } => self.fail(task_id, lease_id, now_ms, error, retry_at_ms),
            Command::Extend {
                task_id,
                lease_id,
                deadline_ms,
                now_ms,
            } => self.extend(task_id, lease_id, deadline_ms, now_ms),
            Command::Cancel { task_id, now_ms } => self.cancel(task_id, now_ms),
            Command::Requeue {
                task_id,
                ready_seq,
                now_ms,
            } => self.requeue(task_id, ready_seq, now_ms),
            Command::Promote { now_ms, moves } => self.promote(now_ms, &moves),
            Command::Delete { task_ids } => self.delete(&task_ids),
        }
    }

    /// Write `new` in place of `old`: both indexes and store follow.
    fn transition(&mut self, old: &TaskRecord, new: TaskRecord) {
        self.state.idx.leave(old);
        delete_index(self.store, &mut self.batch, old);
        self.store_new(new);
        self.mark_counts(old);
    }

    /// Index and store a record that was not indexed before.
    fn store_new(&mut self, record: TaskRecord) {
        self.state.idx.enter(&record);
        put_record(self.store, &mut self.batch, &record);
        self.mark_counts(&record);
        self.records.insert(record.id, Some(record));
    }

    /// Remember to persist the counter of a finished state.
    fn mark_counts(&mut self, record: &TaskRecord) {
        if record.state.is_finished() {
            self.dirty_counts
                .insert((record.state, record.task_type.clone()));
        }
    }

    fn submit(
        &mut self,
        task_id: u64,
        ready_seq: u64,
        now_ms: u64,
        task: crate::task::NewTask,
    ) -> OpOutput {
        if let Some(key) = &task.idempotency_key {
            if let Some(existing) = self.state.idx.idempotent(key) {
                return OpOutput::Submitted {
                    task_id: existing,
                    created: false,
                };
            }
            self.state.idx.hold_key(key.clone(), task_id);
            self.batch
                .put_cf(self.store.cf(CF_IDEMPOTENCY), key, task_id.to_be_bytes());
        }
        self.state.next_task_id = self.state.next_task_id.max(task_id + 1);
        self.state.next_ready_seq = self.state.next_ready_seq.max(ready_seq + 1);

        let run_at_ms = now_ms.saturating_add(task.delay_ms);
        let record = TaskRecord {
            id: task_id,
            task_type: task.task_type,
            priority: task.priority,
            state: if run_at_ms > now_ms {
                State::Scheduled
            } else {
                State::Pending
            },
            run_at_ms,
            timeout_ms: task.timeout_ms,
            max_retries: task.max_retries,
            attempts: 0,
            idempotency_key: task.idempotency_key,
            created_ms: now_ms,
            updated_ms: now_ms,
            finished_ms: None,
            ready_seq,
            lease: None,
            cancel_requested: false,
            last_error: None,
            result: None,
            history: Vec::new(),
        };
        self.batch.put_cf(
            self.store.cf(CF_PAYLOADS),
            task_id.to_be_bytes(),
            &task.payload,
        );
        self.payloads.insert(task_id, task.payload);
        self.store_new(record);
        OpOutput::Submitted {
            task_id,
            created: true,
        }
    }

    fn claim(
        &mut self,
        worker_id: &str,
        now_ms: u64,
        grants: Vec<Grant>,
    ) -> Result<Vec<ClaimedTask>> {
        let mut claimed = Vec::with_capacity(grants.len());
        for grant in grants {
            let old = self.load(grant.task_id)?;
            if old.state != State::Pending {
                continue;
            }
            self.state.next_lease_id = self.state.next_lease_id.max(grant.lease_id + 1);
            let mut new = old.clone();
            new.state = State::InProgress;
            new.attempts += 1;
            new.updated_ms = now_ms;
            new.lease = Some(LeaseRecord {
                lease_id: grant.lease_id,
                worker_id: worker_id.to_owned(),
                deadline_ms: grant.deadline_ms,
                claimed_ms: now_ms,
            });
            new.push_attempt(AttemptRecord {
                attempt: new.attempts,
                worker_id: worker_id.to_owned(),
                started_ms: now_ms,
                ended_ms: None,
                outcome: Outcome::Running,
                error: None,
            });
            claimed.push(ClaimedTask {
                task_id: new.id,
                task_type: new.task_type.clone(),
                payload: self.payload(new.id)?,
                priority: new.priority,
                lease_id: grant.lease_id,
                deadline_ms: grant.deadline_ms,
                attempt: new.attempts,
                max_retries: new.max_retries,
                timeout_ms: new.timeout_ms,
                submitted_ms: new.created_ms,
            });
            self.transition(&old, new);
        }
        Ok(claimed)
    }

    fn payload(&self, task_id: u64) -> Result<Vec<u8>> {
        if let Some(payload) = self.payloads.get(&task_id) {
            return Ok(payload.clone());
        }
        self.store
            .payload(task_id)?
            .ok_or_else(|| EngineError::Corrupt {
                what: format!("task {task_id}"),
                detail: "its payload is missing".to_owned(),
            })
    }

    /// Load a task and check that `lease_id` is its current lease.
    fn leased(&mut self, task_id: u64, lease_id: u64) -> Result<TaskRecord> {
        let record = self.load(task_id)?;
        let stale = |current: String| EngineError::StaleLease {
            task_id,
            given: lease_id,
            current,
        };
        match (&record.state, &record.lease) {
            (State::InProgress, Some(lease)) if lease.lease_id == lease_id => Ok(record),
            (State::InProgress, Some(lease)) => Err(stale(format!(
                "the current lease is {} held by worker {}",
                lease.lease_id, lease.worker_id
            ))),
            (state, _) => Err(stale(format!(
                "the task is {}, not in_progress",
                state.name()
            ))),
        }
    }

    fn ack(
        &mut self,
        task_id: u64,
        lease_id: u64,
        now_ms: u64,
        result: Vec<u8>,
    ) -> Result<OpOutput> {
        let old = self.leased(task_id, lease_id)?;
        let mut new = old.clone();
        new.state = State::Completed;
        new.lease = None;
        new.updated_ms = now_ms;
        new.finished_ms = Some(now_ms);
        new.result = Some(result);
        new.end_attempt(now_ms, Outcome::Completed, None);
        self.transition(&old, new);
        Ok(OpOutput::Done)
    }

    fn fail(
        &mut self,
        task_id: u64,
        lease_id: u64,
        now_ms: u64,
        error: String,
        retry_at_ms: Option<u64>,
    ) -> Result<OpOutput> {
        let old = self.leased(task_id, lease_id)?;
        let error = truncate_error(error);
        let mut new = old.clone();
        new.lease = None;
        new.updated_ms = now_ms;
        new.last_error = Some(error.clone());
        new.end_attempt(now_ms, Outcome::Failed, Some(error));
        // A task whose cancel was requested is not retried: the worker most
        // likely failed it because it was told to stop.
        match retry_at_ms {
            Some(retry_at_ms) if !old.cancel_requested => {
                new.state = State::Failed;
                new.run_at_ms = retry_at_ms;
            }
            _ => {
                new.state = if old.cancel_requested {
                    State::Cancelled
                } else {
                    State::DeadLetter
                };
                new.finished_ms = Some(now_ms);
            }
        }
        let state = new.state;
        self.transition(&old, new);
        Ok(OpOutput::State(state))
    }

    fn extend(
        &mut self,
        task_id: u64,
        lease_id: u64,
        deadline_ms: u64,
        now_ms: u64,
    ) -> Result<OpOutput> {
        let old = self.leased(task_id, lease_id)?;
        let mut new = old.clone();
        new.updated_ms = now_ms;
        if let Some(lease) = &mut new.lease {
            lease.deadline_ms = deadline_ms;
        }
        let cancel_requested = new.cancel_requested;
        self.transition(&old, new);
        Ok(OpOutput::CancelRequested(cancel_requested))
    }

    fn cancel(&mut self, task_id: u64, now_ms: u64) -> Result<OpOutput> {
        let old = self.load(task_id)?;
        let mut new = old.clone();
        new.updated_ms = now_ms;
        match old.state {
            State::Scheduled | State::Pending | State::Failed => {
                new.state = State::Cancelled;
                new.finished_ms = Some(now_ms);
            }
            State::InProgress => new.cancel_requested = true,
            State::Completed | State::DeadLetter | State::Cancelled => {
                return Err(EngineError::InvalidState {
                    task_id,
                    operation: "cancel",
                    expected: "scheduled, pending, failed or in_progress",
                    actual: old.state.name(),
                });
            }
        }
        let state = new.state;
        self.transition(&old, new);
        Ok(OpOutput::State(state))
    }

    fn requeue(&mut self, task_id: u64, ready_seq: u64, now_ms: u64) -> Result<OpOutput> {
        let old = self.load(task_id)?;
        if old.state != State::DeadLetter {
            return Err(EngineError::InvalidState {
                task_id,
                operation: "requeue",
                expected: "dead_letter",
                actual: old.state.name(),
            });
        }
        self.state.next_ready_seq = self.state.next_ready_seq.max(ready_seq + 1);
        let mut new = old.clone();
        new.state = State::Pending;
        new.attempts = 0;
        new.ready_seq = ready_seq;
        new.run_at_ms = now_ms;
        new.updated_ms = now_ms;
        new.finished_ms = None;
        self.transition(&old, new);
        Ok(OpOutput::Done)
    }

    fn promote(&mut self, now_ms: u64, moves: &[(u64, u64)]) -> Result<OpOutput> {
        let mut promoted = 0;
        for &(task_id, ready_seq) in moves {
            let old = self.load(task_id)?;
            if !old.state.is_delayed() {
                continue;
            }
            self.state.next_ready_seq = self.state.next_ready_seq.max(ready_seq + 1);
            let mut new = old.clone();
            new.state = State::Pending;
            new.ready_seq = ready_seq;
            new.updated_ms = now_ms;
            self.transition(&old, new);
            promoted += 1;
        }
        Ok(OpOutput::Count(promoted))
    }

    fn delete(&mut self, task_ids: &[u64]) -> Result<OpOutput> {
        let mut deleted = 0;
        for &task_id in task_ids {
            let record = match self.load(task_id) {
                Ok(record) => record,
                Err(EngineError::NotFound { .. }) => continue,
                Err(err) => return Err(err),
            };
            self.state.idx.leave(&record);
            self.mark_counts(&record);
            delete_index(self.store, &mut self.batch, &record);
            let key = task_id.to_be_bytes();
            self.batch.delete_cf(self.store.cf(CF_TASKS), key);
            self.batch.delete_cf(self.store.cf(CF_PAYLOADS), key);
            if let Some(idempotency_key) = &record.idempotency_key {
                if self.state.idx.release_key(idempotency_key, task_id) {
                    self.batch
                        .delete_cf(self.store.cf(CF_IDEMPOTENCY), idempotency_key);
                }
            }
            self.records.insert(task_id, None);
            self.payloads.remove(&task_id);
            deleted += 1;
        }
        Ok(OpOutput::Count(deleted))
    }
}
