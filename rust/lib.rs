//! The engine of tq: a durable priority queue, delayed schedule and leases on
//! RocksDB, exposed to Python as `tq._core`.
//!
//! - [`task`]: the task model and its states.
//! - [`command`]: operations and the deterministic commands they become.
//! - [`apply`]: the one place where commands change the store and indexes.
//! - [`index`]: the compact in-memory indexes.
//! - [`store`]: the RocksDB layout.
//! - [`engine`]: opening, recovery, commits and reads.
//! - [`crash`]: named points at which crash tests kill the process.

pub mod apply;
pub mod clock;
pub mod command;
pub mod crash;
pub mod engine;
pub mod error;
pub mod index;
pub mod store;
pub mod task;

#[cfg(feature = "python")]
mod python;

pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{ClaimedTask, Op, OpOutput};
pub use engine::{Counts, Engine, LeaseInfo, Page, TaskView};
pub use error::{EngineError, Result};
pub use task::{NewTask, State, TaskRecord};
