//! The one error type of the engine.
//!
//! Each variant becomes one exception class of `tq.errors` at the Python boundary,
//! and one stable wire code in the broker. Messages name what was expected and
//! what came, so they can be shown to a user as they are.

use thiserror::Error;

/// Everything an engine call can fail with.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// An argument was out of range or malformed. Maps to `BadRequest`.
    #[error("{field}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The argument's name as the caller spelled it.
        field: &'static str,
        /// What would have been accepted.
        expected: &'static str,
        /// What came, rendered for a human.
        got: String,
    },

    /// No task has this id: it never existed or was purged. Maps to `TaskNotFound`.
    #[error("task {task_id} not found")]
    NotFound {
        /// The id asked for.
        task_id: u64,
    },

    /// A lease id that is no longer the task's current one. Maps to `StaleLease`.
    ///
    /// The task's lease expired or its worker was lost and the task moved on;
    /// the request changed nothing.
    #[error("task {task_id}: lease {given} is not current ({current})")]
    StaleLease {
        /// The task the lease was for.
        task_id: u64,
        /// The lease id that came with the request.
        given: u64,
        /// What the task holds now, for a human.
        current: String,
    },

    /// The task exists but its state does not allow the operation.
    /// Maps to `InvalidState`.
    #[error("task {task_id} is {actual}; {operation} needs a task that is {expected}")]
    InvalidState {
        /// The task concerned.
        task_id: u64,
        /// The operation that was refused.
        operation: &'static str,
        /// The states the operation accepts.
        expected: &'static str,
        /// The state the task is in.
        actual: &'static str,
    },

    /// The data directory is open already, in this process or another.
    /// Maps to `StoreLocked`.
    #[error("data dir {path} is already open (by this process or another); close it first")]
    Locked {
        /// The data directory.
        path: String,
    },

    /// A read or write of RocksDB failed; nothing was acknowledged.
    /// Maps to `StorageError`.
    #[error("storage: {0}")]
    Storage(String),

    /// A stored record could not be decoded. Maps to `StorageError`.
    #[error("storage: corrupt {what}: {detail}")]
    Corrupt {
        /// Which record or key.
        what: String,
        /// The decoder's complaint.
        detail: String,
    },

    /// The engine was closed. Maps to `EngineClosed`.
    #[error("the engine is closed; open the data dir again to go on")]
    Closed,
}

impl EngineError {
    /// Shorthand for [`EngineError::InvalidArgument`].
    pub fn invalid(field: &'static str, expected: &'static str, got: impl ToString) -> Self {
        Self::InvalidArgument {
            field,
            expected,
            got: got.to_string(),
        }
    }
}

impl From<rocksdb::Error> for EngineError {
    fn from(err: rocksdb::Error) -> Self {
        Self::Storage(err.into_string())
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
