//! The task model: states, the stored record, and what a submit carries.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Longest accepted task type, in bytes.
pub const MAX_TYPE_LEN: usize = 255;
/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Longest accepted worker id, in bytes.
pub const MAX_WORKER_ID_LEN: usize = 255;
/// Most retries a task may ask for.
pub const MAX_RETRIES_LIMIT: u32 = 1_000;
/// Attempts kept in a task's history; older ones are dropped first.
pub const HISTORY_LEN: usize = 32;
/// Longest error text kept per attempt, in bytes; longer ones are cut.
pub const MAX_ERROR_LEN: usize = 4_096;

/// Where a task is in its life. Each state has its own column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Submitted with a delay. In: submit with a future `run_at`.
    /// Out: promotion when due (to pending), cancel.
    Scheduled,
    /// Ready to be claimed. In: submit, promotion of a due scheduled or failed
    /// task, requeue of a dead letter. Out: claim (to in_progress), cancel.
    Pending,
    /// Held by a worker under a lease. In: claim. Out: ack (to completed), fail
    /// (to failed or dead_letter). Cancel only marks it `cancel_requested`.
    InProgress,
    /// Its last attempt failed and it waits out its backoff. In: fail with a
    /// retry time. Out: promotion when due (to pending), cancel.
    Failed,
    /// Done, with a result. In: ack. Out: the retention sweep deletes it.
    Completed,
    /// Out of retries or rejected. In: fail without a retry time. Out: requeue
    /// (to pending), purge or the retention sweep.
    DeadLetter,
    /// Cancelled before it ran. In: cancel. Out: the retention sweep.
    Cancelled,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 7] = [
        State::Scheduled,
        State::Pending,
        State::InProgress,
        State::Failed,
        State::Completed,
        State::DeadLetter,
        State::Cancelled,
    ];

    /// The state's name, which is also its column family's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Scheduled => "scheduled",
            State::Pending => "pending",
            State::InProgress => "in_progress",
            State::Failed => "failed",
            State::Completed => "completed",
            State::DeadLetter => "dead_letter",
            State::Cancelled => "cancelled",
        }
    }

    /// The state named `name`.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] for an unknown name.
    pub fn parse(name: &str) -> Result<State> {
        State::ALL
            .into_iter()
            .find(|state| state.name() == name)
            .ok_or_else(|| {
                EngineError::invalid(
                    "state",
                    "one of scheduled, pending, in_progress, failed, completed, \
                     dead_letter, cancelled",
                    format!("{name:?}"),
                )
            })
    }

    /// Whether tasks leave this state only by deletion or requeue.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            State::Completed | State::DeadLetter | State::Cancelled
        )
    }

    /// Whether the task waits in the delayed schedule.
    pub fn is_delayed(self) -> bool {
        matches!(self, State::Scheduled | State::Failed)
    }
}

/// The display tier of a priority: 0 low (0–99), 1 normal (100–199), 2 high.
pub fn priority_tier(priority: u8) -> usize {
    match priority {
        0..=99 => 0,
        100..=199 => 1,
        _ => 2,
    }
}

/// Names of the priority tiers, indexed by [`priority_tier`].
pub const TIER_NAMES: [&str; 3] = ["low", "normal", "high"];

/// A task as a submit describes it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// Which handler runs it.
    pub task_type: String,
    /// Opaque bytes for the handler.
    pub payload: Vec<u8>,
    /// 0–255, higher first.
    pub priority: u8,
    /// How long after submit it becomes pending.
    pub delay_ms: u64,
    /// How long one attempt may run.
    pub timeout_ms: u64,
    /// How many times a failed attempt may be retried.
    pub max_retries: u32,
    /// A submit with a key the store already holds returns that task.
    pub idempotency_key: Option<String>,
}

impl NewTask {
    /// Check every field against its bounds.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<()> {
        check_name("task_type", &self.task_type, MAX_TYPE_LEN)?;
        if self.timeout_ms == 0 {
            return Err(EngineError::invalid(
                "timeout_ms",
                "a positive number of milliseconds",
                0,
            ));
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(EngineError::invalid(
                "max_retries",
                "at most 1000",
                self.max_retries,
            ));
        }
        if let Some(key) = &self.idempotency_key {
            check_name("idempotency_key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
        }
        Ok(())
    }
}

/// Check that a name is non-empty and at most `max_len` bytes.
///
/// # Errors
/// [`EngineError::InvalidArgument`] naming `field`.
pub fn check_name(field: &'static str, value: &str, max_len: usize) -> Result<()> {
    if value.is_empty() {
        return Err(EngineError::invalid(field, "a non-empty string", "\"\""));
    }
    if value.len() > max_len {
        return Err(EngineError::invalid(
            field,
            "at most 255 bytes",
            format!("{} bytes", value.len()),
        ));
    }
    Ok(())
}

/// The lease a worker holds on an in-progress task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Unique across the store's life; fences late answers.
    pub lease_id: u64,
    /// The worker holding it.
    pub worker_id: String,
    /// When it expires unless extended.
    pub deadline_ms: u64,
    /// When the claim that created it was made.
    pub claimed_ms: u64,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Still under its lease.
    Running,
    /// Acked.
    Completed,
    /// Failed by the worker or by the broker for it (lease expired, worker lost).
    Failed,
}

impl Outcome {
    /// The outcome's name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
        }
    }
}

/// One attempt in a task's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The worker that ran it.
    pub worker_id: String,
    /// When it was claimed.
    pub started_ms: u64,
    /// When it was acked or failed.
    pub ended_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error it failed with.
    pub error: Option<String>,
}

/// A task as stored in the `tasks` column family. The payload is stored apart,
/// in `payloads`, so state changes never rewrite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Unique, increasing with submit order.
    pub id: u64,
    /// Which handler runs it.
    pub task_type: String,
    /// 0–255, higher first.
    pub priority: u8,
    /// Where it is in its life.
    pub state: State,
    /// When it is (or was) due: the submit time plus delay, or a retry time.
    pub run_at_ms: u64,
    /// How long one attempt may run.
    pub timeout_ms: u64,
    /// How many times a failed attempt may be retried.
    pub max_retries: u32,
    /// Attempts started so far (claims).
    pub attempts: u32,
    /// The key that makes its submit idempotent.
    pub idempotency_key: Option<String>,
    /// When it was submitted.
    pub created_ms: u64,
    /// When it last changed.
    pub updated_ms: u64,
    /// When it reached a finished state.
    pub finished_ms: Option<u64>,
    /// Its place in FIFO order among pending tasks of its priority.
    pub ready_seq: u64,
    /// The current lease, while in progress.
    pub lease: Option<LeaseRecord>,
    /// Set by a cancel while in progress, for the worker to see.
    pub cancel_requested: bool,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// What the ack carried.
    pub result: Option<Vec<u8>>,
    /// The last attempts, oldest first.
    pub history: Vec<AttemptRecord>,
}

impl TaskRecord {
    /// Encode for storage: a format byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_FORMAT];
        // Serialising plain owned data into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).expect("task record serialises"));
        out
    }

    /// Decode a stored record.
    ///
    /// # Errors
    /// [`EngineError::Corrupt`] when the bytes are not a record of this format.
    pub fn decode(id: u64, bytes: &[u8]) -> Result<Self> {
        let corrupt = |detail: String| EngineError::Corrupt {
            what: format!("record of task {id}"),
            detail,
        };
        match bytes.split_first() {
            Some((&RECORD_FORMAT, body)) => {
                postcard::from_bytes(body).map_err(|err| corrupt(err.to_string()))
            }
            Some((format, _)) => Err(corrupt(format!("unknown format byte {format}"))),
            None => Err(corrupt("empty value".to_owned())),
        }
    }

    /// Add an attempt to the history, dropping the oldest past [`HISTORY_LEN`].
    pub fn push_attempt(&mut self, attempt: AttemptRecord) {
        if self.history.len() >= HISTORY_LEN {
            self.history.remove(0);
        }
        self.history.push(attempt);
    }

    /// Close the running attempt with an outcome.
    pub fn end_attempt(&mut self, now_ms: u64, outcome: Outcome, error: Option<String>) {
        if let Some(last) = self.history.last_mut() {
            if last.outcome == Outcome::Running {
                last.ended_ms = Some(now_ms);
                last.outcome = outcome;
                last.error = error;
            }
        }
    }
}

/// The first byte of every stored record; bumped when the layout changes.
const RECORD_FORMAT: u8 = 1;

/// Cut an error text to [`MAX_ERROR_LEN`] bytes on a character boundary.
pub fn truncate_error(mut error: String) -> String {
    if error.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    error
}
