//! Operations as callers ask for them, and commands as the engine applies them.
//!
//! An [`Op`] may depend on the clock and on the engine's counters; planning turns
//! it into a [`Command`] with every id, lease id and timestamp fixed. Applying a
//! command reads nothing but the command and the current state, so replaying the
//! same commands in the same order on another copy of the store gives the same
//! result — the property a replicated log needs.

use crate::task::{NewTask, State};

/// What a caller asks of the engine. Many ops share one atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store a new task. Output: [`OpOutput::Submitted`].
    Submit(NewTask),
    /// Lease up to `max_tasks` ready tasks. Output: [`OpOutput::Claimed`].
    Claim {
        /// Who will run them.
        worker_id: String,
        /// How many at most.
        max_tasks: usize,
        /// Only these types, when given.
        task_types: Option<Vec<String>>,
        /// Added to each task's timeout to set the lease deadline.
        lease_grace_ms: u64,
    },
    /// Complete a leased task. Output: [`OpOutput::Done`].
    Ack {
        /// The task.
        task_id: u64,
        /// The lease it was claimed under.
        lease_id: u64,
        /// What the handler returned.
        result: Vec<u8>,
    },
    /// End a leased attempt with an error. Output: [`OpOutput::State`].
    Fail {
        /// The task.
        task_id: u64,
        /// The lease it was claimed under.
        lease_id: u64,
        /// Why it failed.
        error: String,
        /// Retry at this time, or dead-letter when `None`.
        retry_at_ms: Option<u64>,
    },
    /// Move a lease's deadline. Output: [`OpOutput::CancelRequested`].
    Extend {
        /// The task.
        task_id: u64,
        /// The lease it was claimed under.
        lease_id: u64,
        /// The new deadline.
        deadline_ms: u64,
    },
    /// Cancel a task. Output: [`OpOutput::State`].
    Cancel {
        /// The task.
        task_id: u64,
    },
    /// Move a dead letter back to pending. Output: [`OpOutput::Done`].
    Requeue {
        /// The task.
        task_id: u64,
    },
    /// Make due scheduled and failed tasks pending. Output: [`OpOutput::Count`].
    PromoteDue {
        /// How many at most.
        limit: usize,
    },
    /// Requeue dead letters. Output: [`OpOutput::Count`].
    RequeueDeadLetters {
        /// Only of this type, when given.
        task_type: Option<String>,
        /// How many at most.
        limit: usize,
    },
    /// Delete dead letters. Output: [`OpOutput::Count`].
    PurgeDeadLetters {
        /// Only those dead-lettered before this time, when given.
        before_ms: Option<u64>,
        /// Only of this type, when given.
        task_type: Option<String>,
        /// How many at most.
        limit: usize,
    },
    /// Delete old finished tasks. Output: [`OpOutput::Count`].
    Sweep {
        /// Completed and cancelled tasks finished before this go.
        completed_before_ms: u64,
        /// Dead letters from before this go.
        dead_letter_before_ms: u64,
        /// How many at most.
        limit: usize,
    },
}

/// What an op gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutput {
    /// A submit's task id; `created` is false when an idempotency key matched.
    Submitted {
        /// The new (or existing) task.
        task_id: u64,
        /// Whether this submit stored it.
        created: bool,
    },
    /// Tasks leased by a claim, in claim order.
    Claimed(Vec<ClaimedTask>),
    /// Done, nothing to report.
    Done,
    /// The state the task moved to.
    State(State),
    /// Whether a cancel has been requested for the leased task.
    CancelRequested(bool),
    /// How many tasks were affected.
    Count(u64),
}

/// A task handed to a worker under a new lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    /// The task.
    pub task_id: u64,
    /// Which handler runs it.
    pub task_type: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its priority.
    pub priority: u8,
    /// The new lease.
    pub lease_id: u64,
    /// When the lease expires.
    pub deadline_ms: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Its retry limit.
    pub max_retries: u32,
    /// How long one attempt may run.
    pub timeout_ms: u64,
    /// When it was submitted.
    pub submitted_ms: u64,
}

/// One lease granted by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The task leased.
    pub task_id: u64,
    /// The new lease's id.
    pub lease_id: u64,
    /// When it expires.
    pub deadline_ms: u64,
}

/// A fully determined state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Store a new task under `task_id`.
    Submit {
        /// The id chosen for it.
        task_id: u64,
        /// Its FIFO place, used when it is pending at once.
        ready_seq: u64,
        /// The submit time.
        now_ms: u64,
        /// What was submitted.
        task: NewTask,
    },
    /// Lease tasks to a worker.
    Claim {
        /// Who holds the leases.
        worker_id: String,
        /// The claim time.
        now_ms: u64,
        /// The leases, in claim order.
        grants: Vec<Grant>,
    },
    /// Complete a task.
    Ack {
        /// The task.
        task_id: u64,
        /// The lease presented.
        lease_id: u64,
        /// The ack time.
        now_ms: u64,
        /// The handler's result.
        result: Vec<u8>,
    },
    /// End an attempt with an error.
    Fail {
        /// The task.
        task_id: u64,
        /// The lease presented.
        lease_id: u64,
        /// The failure time.
        now_ms: u64,
        /// Why.
        error: String,
        /// When to retry, or `None` to dead-letter.
        retry_at_ms: Option<u64>,
    },
    /// Move a lease deadline.
    Extend {
        /// The task.
        task_id: u64,
        /// The lease presented.
        lease_id: u64,
        /// The new deadline.
        deadline_ms: u64,
        /// The time of the request.
        now_ms: u64,
    },
    /// Cancel a task.
    Cancel {
        /// The task.
        task_id: u64,
        /// The cancel time.
        now_ms: u64,
    },
    /// Dead letter back to pending.
    Requeue {
        /// The task.
        task_id: u64,
        /// Its new FIFO place.
        ready_seq: u64,
        /// The requeue time.
        now_ms: u64,
    },
    /// Delayed tasks to pending, each with its FIFO place.
    Promote {
        /// The promotion time.
        now_ms: u64,
        /// (task id, ready sequence) pairs.
        moves: Vec<(u64, u64)>,
    },
    /// Delete tasks with everything stored for them.
    Delete {
        /// The tasks.
        task_ids: Vec<u64>,
    },
}
