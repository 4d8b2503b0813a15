//! Named crash points: the process kills itself at a chosen moment of a commit.
//!
//! A random `kill -9` rarely lands in the few microseconds between a write and
//! its fsync, or in the one commit that moves a task to the dead letter queue.
//! Crash tests name the moment instead: with `TQ_CRASH_AT=<point>[:<n>]` in its
//! environment, an engine sends itself SIGKILL the n-th time (the first when
//! `n` is left out) it reaches that point, which is the same death as
//! `kill -9` from outside. Without the variable each point costs one branch on
//! a `None`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::command::Op;
use crate::error::{EngineError, Result};

/// The environment variable that arms a crash point.
pub const CRASH_AT_VAR: &str = "TQ_CRASH_AT";

/// A moment of [`crate::Engine::commit`] at which a crash test may kill the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The batch is in RocksDB's write-ahead log but not fsynced.
    AfterWriteBeforeFsync,
    /// The batch is on disk; no caller has heard so.
    AfterFsyncBeforeReply,
    /// A failed attempt's retry is planned but not written.
    RetryReschedule,
    /// A task's move to the dead letter queue is planned but not written.
    DeadLetterMove,
    /// A retention sweep's deletions are planned but not written.
    RetentionSweep,
}

impl CrashPoint {
    /// Every point, in the order a commit reaches them.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::RetryReschedule,
        CrashPoint::DeadLetterMove,
        CrashPoint::RetentionSweep,
        CrashPoint::AfterWriteBeforeFsync,
        CrashPoint::AfterFsyncBeforeReply,
    ];

    /// The point's name in [`CRASH_AT_VAR`].
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterWriteBeforeFsync => "after_write_before_fsync",
            CrashPoint::AfterFsyncBeforeReply => "after_fsync_before_reply",
            CrashPoint::RetryReschedule => "retry_reschedule",
            CrashPoint::DeadLetterMove => "dead_letter_move",
            CrashPoint::RetentionSweep => "retention_sweep",
        }
    }

    /// Whether a commit of `ops` plans a change of this point's kind.
    ///
    /// Always false for the two write points: every commit that writes
    /// reaches them.
    pub fn planned_in(self, ops: &[Op]) -> bool {
        ops.iter().any(|op| match (self, op) {
            (CrashPoint::RetryReschedule, Op::Fail { retry_at_ms, .. }) => retry_at_ms.is_some(),
            (CrashPoint::DeadLetterMove, Op::Fail { retry_at_ms, .. }) => retry_at_ms.is_none(),
            (CrashPoint::RetentionSweep, Op::Sweep { .. }) => true,
            _ => false,
        })
    }
}

/// An armed crash point: where, and after how many passes.
#[derive(Debug)]
pub struct CrashPlan {
    point: CrashPoint,
    hit_on: u64,
    passes: AtomicU64,
}

impl CrashPlan {
    /// The plan [`CRASH_AT_VAR`] asks for, if it is set.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] naming the variable when its value is
    /// not `<point>[:<n>]` with a known point and `n` ≥ 1.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(CRASH_AT_VAR) {
            Ok(value) if !value.is_empty() => Self::parse(&value).map(Some),
            _ => Ok(None),
        }
    }

    /// Parse `<point>[:<n>]`.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] for an unknown point or a bad count.
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = || EngineError::InvalidArgument {
            field: CRASH_AT_VAR,
            expected: "<point>[:<n>] with n >= 1 and point one of retry_reschedule, \
                 dead_letter_move, retention_sweep, after_write_before_fsync, \
                 after_fsync_before_reply",
            got: format!("{value:?}"),
        };
        let (name, count) = match value.split_once(':') {
            Some((name, count)) => (name, count.parse::<u64>().map_err(|_| invalid())?),
            None => (value, 1),
        };
        let point = CrashPoint::ALL
            .into_iter()
            .find(|point| point.name() == name)
            .ok_or_else(invalid)?;
        if count == 0 {
            return Err(invalid());
        }
        Ok(Self {
            point,
            hit_on: count,
            passes: AtomicU64::new(0),
        })
    }

    /// The armed point.
    pub fn point(&self) -> CrashPoint {
        self.point
    }

    /// Count a pass of the armed point; true on the pass that must crash.
    pub fn passes_now(&self, point: CrashPoint) -> bool {
        point == self.point && self.passes.fetch_add(1, Ordering::Relaxed) + 1 == self.hit_on
    }
}

/// Kill this process the way `kill -9` does: no unwinding, no flushing.
pub fn die() -> ! {
    // SAFETY: kill(2) on our own pid with a signal that cannot be caught.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL ends every thread of the process; until it lands, wait.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_with_a_count_crashes_on_that_pass_only() {
        let plan = CrashPlan::parse("dead_letter_move:3").unwrap();
        assert_eq!(plan.point(), CrashPoint::DeadLetterMove);
        assert!(!plan.passes_now(CrashPoint::RetentionSweep));
        let passes: Vec<bool> = (0..4)
            .map(|_| plan.passes_now(CrashPoint::DeadLetterMove))
            .collect();
        assert_eq!(passes, [false, false, true, false]);
    }

    #[test]
    fn a_point_without_a_count_crashes_on_its_first_pass() {
        let plan = CrashPlan::parse("after_fsync_before_reply").unwrap();
        assert!(plan.passes_now(CrashPoint::AfterFsyncBeforeReply));
    }

    #[test]
    fn an_unknown_point_or_a_bad_count_is_refused_naming_the_variable() {
        for value in ["nowhere", "retention_sweep:0", "retention_sweep:x", ":2"] {
            let err = CrashPlan::parse(value).unwrap_err().to_string();
            assert!(err.starts_with("TQ_CRASH_AT: expected <point>"), "{err}");
            assert!(err.ends_with(&format!("got {value:?}")), "{err}");
        }
    }
}
