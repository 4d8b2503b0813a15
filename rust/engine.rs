//! The engine: a durable task store with its in-memory indexes.
//!
//! Every change goes through [`Engine::commit`]: each [`Op`] is planned into a
//! [`Command`] (ids, lease ids and times fixed from the counters and the clock),
//! applied to a [`Tx`], and the whole batch is written with one RocksDB write —
//! one fsync when fsync is on. Reads go straight to RocksDB or the indexes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use crate::apply::{CoreState, Tx};
use crate::clock::Clock;
use crate::command::{Command, Grant, Op, OpOutput};
use crate::crash::{self, CrashPlan, CrashPoint};
use crate::error::{EngineError, Result};
use crate::index::LeaseEntry;
use crate::store::{
    decode_u64, parse_count_key, parse_index_value, Store, CF_IDEMPOTENCY, CF_META,
    META_COUNT_PREFIX, META_NEXT_LEASE_ID, META_NEXT_READY_SEQ, META_NEXT_TASK_ID,
};
use crate::task::{check_name, State, TaskRecord, MAX_WORKER_ID_LEN, TIER_NAMES};

/// Largest page a listing returns.
pub const MAX_PAGE: usize = 1_000;
/// Most tasks one claim may lease.
pub const MAX_CLAIM: usize = 10_000;
/// How long after a failed write the store is first opened again.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two tries at opening a failing store again: each
/// try that fails doubles the wait up to this, as a try blocks reads while it
/// rebuilds the indexes.
pub const MAX_REOPEN_INTERVAL: Duration = Duration::from_secs(30);

/// A task with its payload, as reads return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Everything but the payload.
    pub record: TaskRecord,
    /// The payload.
    pub payload: Vec<u8>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The tasks, in the state's index order.
    pub tasks: Vec<TaskView>,
    /// Where the next page starts, if there may be one.
    pub next_cursor: Option<Vec<u8>>,
}

/// A lease currently held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The leased task.
    pub task_id: u64,
    /// The lease's id.
    pub lease_id: u64,
    /// Who holds it.
    pub worker_id: String,
    /// When it expires.
    pub deadline_ms: u64,
    /// When it was claimed.
    pub claimed_ms: u64,
    /// The task's type.
    pub task_type: String,
    /// Which attempt it is.
    pub attempt: u32,
    /// The task's retry limit.
    pub max_retries: u32,
}

/// Task counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks per state, every state present.
    pub by_state: BTreeMap<&'static str, u64>,
    /// Tasks per type and state, non-zero counts only.
    pub by_type: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Pending tasks per priority tier.
    pub pending_by_tier: BTreeMap<&'static str, u64>,
}

/// A write the store refused, and when to try opening it again.
///
/// After a failed append or fsync of its write-ahead log, RocksDB refuses
/// every later write until the store is opened again.
struct FailedWrite {
    error: EngineError,
    retry_at: Instant,
    interval: Duration,
}

impl FailedWrite {
    fn new(error: EngineError, interval: Duration) -> Self {
        Self {
            error,
            retry_at: Instant::now() + interval,
            interval,
        }
    }
}

/// The open store and the state guarded with it.
struct Core {
    store: Store,
    state: Mutex<CoreState>,
}

/// A durable task store with in-memory indexes. Thread-safe.
pub struct Engine {
    core: RwLock<Option<Core>>,
    clock: Arc<dyn Clock>,
    path: String,
    fsync: bool,
    crash: Option<CrashPlan>,
    failed_write: Mutex<Option<FailedWrite>>,
    /// Set while `failed_write` is: reads then say why the store is away.
    reopening: AtomicBool,
}

impl Engine {
    /// Open the store at `path`, creating it if needed, and rebuild every index.
    ///
    /// # Errors
    /// [`EngineError::Locked`] when the directory is open already; a storage or
    /// corruption error when it cannot be read; [`EngineError::InvalidArgument`]
    /// when [`crash::CRASH_AT_VAR`] is set to something else than a crash point.
    pub fn open(path: &str, fsync: bool, clock: Arc<dyn Clock>) -> Result<Self> {
        let crash = CrashPlan::from_env()?;
        let core = Store::open(path, fsync).and_then(open_core)?;
        Ok(Self {
            core: RwLock::new(Some(core)),
            clock,
            path: path.to_owned(),
            fsync,
            crash,
            failed_write: Mutex::new(None),
            reopening: AtomicBool::new(false),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether writes are synced to disk before they return.
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    /// The engine clock's time.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Close the store. Later calls fail with [`EngineError::Closed`].
    pub fn close(&self) {
        let mut failed = lock(&self.failed_write);
        *failed = None;
        self.reopening.store(false, Ordering::Release);
        let core = self.core.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(core);
    }

    fn core(&self) -> Result<RwLockReadGuard<'_, Option<Core>>> {
        let guard = self.core.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if self.reopening.load(Ordering::Acquire) {
                return Err(EngineError::Storage(format!(
                    "store {} unavailable: it failed a write and could not be \
                     opened again yet",
                    self.path
                )));
            }
            return Err(EngineError::Closed);
        }
        Ok(guard)
    }

    /// After a failed write, open the store again so that writes work once the
    /// fault is gone: first [`REOPEN_INTERVAL`] after it, then at doubling
    /// intervals up to [`MAX_REOPEN_INTERVAL`] while it keeps failing.
    ///
    /// Until it opens for writing, the store stays open read-only when it
    /// can be, so reads go on, and every commit fails with the last error.
    fn reopen_after_failed_write(&self) -> Result<()> {
        let mut failed = lock(&self.failed_write);
        let Some(failure) = failed.as_ref() else {
            return Ok(());
        };
        if Instant::now() < failure.retry_at {
            return Err(failure.error.clone());
        }
        let mut slot = self.core.write().unwrap_or_else(|e| e.into_inner());
        // Every handle must be gone before the store can be opened for writing.
        drop(slot.take());
        match Store::open(&self.path, self.fsync).and_then(open_core) {
            Ok(core) => {
                *slot = Some(core);
                *failed = None;
                self.reopening.store(false, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                let interval = (failure.interval * 2).min(MAX_REOPEN_INTERVAL);
                *slot = Store::open_read_only(&self.path).and_then(open_core).ok();
                *failed = Some(FailedWrite::new(error.clone(), interval));
                Err(error)
            }
        }
    }

    /// Remember a failed write, so that the next commit opens the store again.
    ///
    /// Call it holding neither the store nor the state lock.
    fn note_failed_write(&self, error: &EngineError) {
        let mut failed = lock(&self.failed_write);
        *failed = Some(FailedWrite::new(error.clone(), REOPEN_INTERVAL));
        self.reopening.store(true, Ordering::Release);
    }

    /// Apply many ops with one atomic write.
    ///
    /// Returns one result per op: a refused op (stale lease, unknown task...)
    /// gives its error and changes nothing, while the others still apply.
    ///
    /// # Errors
    /// A storage error when the write fails: then no op took effect, and the
    /// indexes are rebuilt from the store. Later commits fail with that error
    /// until it is time to try opening the store again (see
    /// [`REOPEN_INTERVAL`]); the commit that tries succeeds if the fault is
    /// gone.
    pub fn commit(&self, ops: Vec<Op>) -> Result<Vec<Result<OpOutput>>> {
        if self.reopening.load(Ordering::Acquire) {
            self.reopen_after_failed_write()?;
        }
        let guard = self.core()?;
        let core = guard.as_ref().ok_or(EngineError::Closed)?;
        let mut state = lock(&core.state);
        let now_ms = self.clock.now_ms();
        let planned_crash = self.crash_planned_in(&ops);
        let mut tx = Tx::new(&core.store, &mut state);
        let results: Vec<Result<OpOutput>> =
            ops.into_iter().map(|op| run(&mut tx, op, now_ms)).collect();
        let batch = tx.into_batch();
        if batch.is_empty() {
            // Nothing to store (a claim that found nothing, refused ops): with
            // fsync on, writing it anyway would cost a disk flush for nothing.
            return Ok(results);
        }
        if planned_crash.is_some_and(|point| self.crash_here(point)) {
            crash::die();
        }
        if self.crash_here(CrashPoint::AfterWriteBeforeFsync) {
            // Whatever the write leaves in the OS's page cache survives the
            // process, as it would survive a kill at this moment.
            let _ = core.store.write_unsynced(batch);
            crash::die();
        }
        if let Err(err) = core.store.write(batch) {
            // Memory ran ahead of the failed write: throw it away.
            *state = recover(&core.store)?;
            // A reopen takes the failed-write slot, then the store: let go of
            // the store before taking the slot, as a reopen may be waiting.
            drop(state);
            drop(guard);
            self.note_failed_write(&err);
            return Err(err);
        }
        if self.crash_here(CrashPoint::AfterFsyncBeforeReply) {
            crash::die();
        }
        Ok(results)
    }

    /// The armed crash point, when `ops` plan a change of its kind.
    fn crash_planned_in(&self, ops: &[Op]) -> Option<CrashPoint> {
        let point = self.crash.as_ref()?.point();
        point.planned_in(ops).then_some(point)
    }

    /// Whether the armed crash point is `point` and this pass must crash.
    fn crash_here(&self, point: CrashPoint) -> bool {
        self.crash
            .as_ref()
            .is_some_and(|plan| plan.passes_now(point))
    }

    /// Apply one op on its own.
    ///
    /// # Errors
    /// The op's refusal or a storage error.
    pub fn execute(&self, op: Op) -> Result<OpOutput> {
        self.commit(vec![op])?
            .pop()
            .unwrap_or(Err(EngineError::Closed))
    }

    /// A task with its payload.
    ///
    /// # Errors
    /// [`EngineError::NotFound`], or a storage error.
    pub fn get(&self, task_id: u64) -> Result<TaskView> {
        let guard = self.core()?;
        let store = &guard.as_ref().ok_or(EngineError::Closed)?.store;
        view(store, task_id)?.ok_or(EngineError::NotFound { task_id })
    }

    /// A page of the tasks in `state`, optionally of one type, after `cursor`.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] for a limit out of 1–1000, or a storage
    /// error.
    pub fn list(
        &self,
        state: State,
        task_type: Option<&str>,
        limit: usize,
        cursor: Option<&[u8]>,
    ) -> Result<Page> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(EngineError::invalid("limit", "1 to 1000", limit));
        }
        let guard = self.core()?;
        let store = &guard.as_ref().ok_or(EngineError::Closed)?.store;
        let (keys, more) = scan_index(store, state, task_type, limit, cursor)?;
        let mut tasks = Vec::with_capacity(keys.len());
        for (_, task_id) in &keys {
            // A task may move on between the index scan and this read.
            if let Some(task) = view(store, *task_id)? {
                tasks.push(task);
            }
        }
        let next_cursor = if more {
            keys.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        Ok(Page { tasks, next_cursor })
    }

    /// Task counts by state, by type and state, and pending by priority tier.
    ///
    /// # Errors
    /// [`EngineError::Closed`].
    pub fn counts(&self) -> Result<Counts> {
        self.with_state(|state| {
            let mut counts = Counts::default();
            for state_kind in State::ALL {
                counts.by_state.insert(state_kind.name(), 0);
            }
            for (state_kind, task_type, count) in state.idx.counts() {
                *counts.by_state.entry(state_kind.name()).or_default() += count;
                counts
                    .by_type
                    .entry(task_type.to_owned())
                    .or_default()
                    .insert(state_kind.name(), count);
            }
            for (name, count) in TIER_NAMES.iter().zip(state.idx.pending_by_tier()) {
                counts.pending_by_tier.insert(name, count);
            }
            counts
        })
    }

    /// Leases whose deadline has passed, earliest first.
    ///
    /// # Errors
    /// [`EngineError::Closed`].
    pub fn expired_leases(&self, limit: usize) -> Result<Vec<LeaseInfo>> {
        let now_ms = self.clock.now_ms();
        self.with_state(|state| {
            state
                .idx
                .expired(now_ms, limit)
                .into_iter()
                .map(|(task_id, entry)| lease_info(state, task_id, entry))
                .collect()
        })
    }

    /// The leases a worker holds.
    ///
    /// # Errors
    /// [`EngineError::Closed`].
    pub fn worker_leases(&self, worker_id: &str) -> Result<Vec<LeaseInfo>> {
        self.with_state(|state| {
            state
                .idx
                .worker_leases(worker_id)
                .into_iter()
                .map(|(task_id, entry)| lease_info(state, task_id, entry))
                .collect()
        })
    }

    /// Tasks waiting to run: pending, scheduled and failed. The broker compares
    /// it with its queue depth threshold.
    ///
    /// # Errors
    /// [`EngineError::Closed`].
    pub fn queue_depth(&self) -> Result<u64> {
        self.with_state(|state| state.idx.queue_depth())
    }

    /// When the next delayed task is due or the next lease expires.
    ///
    /// # Errors
    /// [`EngineError::Closed`].
    pub fn next_due_ms(&self) -> Result<Option<u64>> {
        self.with_state(|state| state.idx.next_due_ms())
    }

    fn with_state<T>(&self, read: impl FnOnce(&CoreState) -> T) -> Result<T> {
        let guard = self.core()?;
        let core = guard.as_ref().ok_or(EngineError::Closed)?;
        let state = lock(&core.state);
        Ok(read(&state))
    }
}

fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the state lock leaves indexes that still match the
    // store up to the last successful write, and the failed-write slot holds
    // no invariant: a poisoned lock is safe to reuse.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn lease_info(state: &CoreState, task_id: u64, entry: &LeaseEntry) -> LeaseInfo {
    LeaseInfo {
        task_id,
        lease_id: entry.lease_id,
        worker_id: entry.worker_id.to_string(),
        deadline_ms: entry.deadline_ms,
        claimed_ms: entry.claimed_ms,
        task_type: state.idx.types.name(entry.type_id).to_owned(),
        attempt: entry.attempt,
        max_retries: entry.max_retries,
    }
}

fn view(store: &Store, task_id: u64) -> Result<Option<TaskView>> {
    let Some(record) = store.record(task_id)? else {
        return Ok(None);
    };
    let payload = store.payload(task_id)?.unwrap_or_default();
    Ok(Some(TaskView { record, payload }))
}

/// Index entries as (index key, task id): the key is the listing's cursor.
type IndexHits = Vec<(Vec<u8>, u64)>;

/// Up to `limit` (index key, task id) pairs of `state` after `cursor`, and
/// whether another match follows.
fn scan_index(
    store: &Store,
    state: State,
    task_type: Option<&str>,
    limit: usize,
    cursor: Option<&[u8]>,
) -> Result<(IndexHits, bool)> {
    let mut iter = store.iter_from(state.name(), cursor);
    if let (Some(cursor), Some(key)) = (cursor, iter.key()) {
        if key == cursor {
            iter.next();
        }
    }
    let mut found = Vec::new();
    let mut more = false;
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let (task_id, entry_type) = parse_index_value(value)?;
        if task_type.is_none_or(|wanted| wanted == entry_type) {
            if found.len() == limit {
                more = true;
                break;
            }
            found.push((key.to_vec(), task_id));
        }
        iter.next();
    }
    iter.status()?;
    Ok((found, more))
}

/// Plan an op into commands and apply them.
fn run(tx: &mut Tx<'_>, op: Op, now_ms: u64) -> Result<OpOutput> {
    match op {
        Op::Submit(task) => {
            task.validate()?;
            let task_id = tx.state.take_task_id();
            let ready_seq = tx.state.take_ready_seq();
            tx.apply(Command::Submit {
                task_id,
                ready_seq,
                now_ms,
                task,
            })
        }
        Op::Claim {
            worker_id,
            max_tasks,
            task_types,
            lease_grace_ms,
        } => {
            check_name("worker_id", &worker_id, MAX_WORKER_ID_LEN)?;
            if max_tasks > MAX_CLAIM {
                return Err(EngineError::invalid("max_tasks", "0 to 10000", max_tasks));
            }
            promote_due(tx, now_ms, usize::MAX)?;
            let grants = plan_grants(tx, max_tasks, task_types.as_deref(), lease_grace_ms, now_ms)?;
            tx.apply(Command::Claim {
                worker_id,
                now_ms,
                grants,
            })
        }
        Op::Ack {
            task_id,
            lease_id,
            result,
        } => tx.apply(Command::Ack {
            task_id,
            lease_id,
            now_ms,
            result,
        }),
        Op::Fail {
            task_id,
            lease_id,
            error,
            retry_at_ms,
        } => tx.apply(Command::Fail {
            task_id,
            lease_id,
            now_ms,
            error,
            retry_at_ms,
        }),
        Op::Extend {
            task_id,
            lease_id,
            deadline_ms,
        } => tx.apply(Command::Extend {
            task_id,
            lease_id,
            deadline_ms,
            now_ms,
        }),
        Op::Cancel { task_id } => tx.apply(Command::Cancel { task_id, now_ms }),
        Op::Requeue { task_id } => {
            let ready_seq = tx.state.take_ready_seq();
            tx.apply(Command::Requeue {
                task_id,
                ready_seq,
                now_ms,
            })
        }
        Op::PromoteDue { limit } => promote_due(tx, now_ms, limit),
        Op::RequeueDeadLetters { task_type, limit } => {
            let task_ids =
                finished_before(tx, State::DeadLetter, u64::MAX, task_type.as_deref(), limit)?;
            let mut requeued = 0;
            for task_id in task_ids {
                let ready_seq = tx.state.take_ready_seq();
                tx.apply(Command::Requeue {
                    task_id,
                    ready_seq,
                    now_ms,
                })?;
                requeued += 1;
            }
            Ok(OpOutput::Count(requeued))
        }
        Op::PurgeDeadLetters {
            before_ms,
            task_type,
            limit,
        } => {
            let before_ms = before_ms.unwrap_or(u64::MAX);
            let task_ids = finished_before(
                tx,
                State::DeadLetter,
                before_ms,
                task_type.as_deref(),
                limit,
            )?;
            tx.apply(Command::Delete { task_ids })
        }
        Op::Sweep {
            completed_before_ms,
            dead_letter_before_ms,
            limit,
        } => {
            let mut task_ids = Vec::new();
            for (state, before_ms) in [
                (State::Completed, completed_before_ms),
                (State::Cancelled, completed_before_ms),
                (State::DeadLetter, dead_letter_before_ms),
            ] {
                let room = limit - task_ids.len();
                task_ids.extend(finished_before(tx, state, before_ms, None, room)?);
            }
            tx.apply(Command::Delete { task_ids })
        }
    }
}

/// Promote up to `limit` due delayed tasks.
fn promote_due(tx: &mut Tx<'_>, now_ms: u64, limit: usize) -> Result<OpOutput> {
    if !tx.state.idx.any_due(now_ms) {
        return Ok(OpOutput::Count(0));
    }
    let due = tx.state.idx.due(now_ms, limit);
    let moves = due
        .into_iter()
        .map(|task_id| (task_id, tx.state.take_ready_seq()))
        .collect();
    tx.apply(Command::Promote { now_ms, moves })
}

/// Choose the tasks a claim leases and give each a lease id and deadline.
fn plan_grants(
    tx: &mut Tx<'_>,
    max_tasks: usize,
    task_types: Option<&[String]>,
    lease_grace_ms: u64,
    now_ms: u64,
) -> Result<Vec<Grant>> {
    let type_ids: Option<Vec<u32>> = task_types.map(|names| {
        names
            .iter()
            .filter_map(|n| tx.state.idx.types.get(n))
            .collect()
    });
    let task_ids = tx.state.idx.ready_in_order(type_ids.as_deref(), max_tasks);
    let mut grants = Vec::with_capacity(task_ids.len());
    for task_id in task_ids {
        let timeout_ms = tx.load(task_id)?.timeout_ms;
        grants.push(Grant {
            task_id,
            lease_id: tx.state.take_lease_id(),
            deadline_ms: now_ms
                .saturating_add(timeout_ms)
                .saturating_add(lease_grace_ms),
        });
    }
    Ok(grants)
}

/// Ids of up to `limit` tasks still in finished `state` that finished before
/// `before_ms`, oldest first, optionally of one type.
fn finished_before(
    tx: &mut Tx<'_>,
    state: State,
    before_ms: u64,
    task_type: Option<&str>,
    limit: usize,
) -> Result<Vec<u64>> {
    let mut task_ids = Vec::new();
    let mut iter = tx.store().iter_from(state.name(), None);
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        if task_ids.len() >= limit || decode_u64(&key[..8], "index key")? >= before_ms {
            break;
        }
        let (task_id, entry_type) = parse_index_value(value)?;
        if task_type.is_none_or(|wanted| wanted == entry_type) {
            task_ids.push(task_id);
        }
        iter.next();
    }
    iter.status()?;
    drop(iter);
    // Earlier ops of the same batch may have moved some of them already.
    let mut still = Vec::with_capacity(task_ids.len());
    for task_id in task_ids {
        if tx.load(task_id).is_ok_and(|record| record.state == state) {
            still.push(task_id);
        }
    }
    Ok(still)
}

/// Rebuild every index and counter from the store.
///
/// Pending, delayed and in-progress tasks are found by scanning their index
/// families; finished tasks are only counted, from the counters kept in `meta`.
/// A store just opened, with its indexes rebuilt.
fn open_core(store: Store) -> Result<Core> {
    let state = recover(&store)?;
    Ok(Core {
        store,
        state: Mutex::new(state),
    })
}

fn recover(store: &Store) -> Result<CoreState> {
    let mut state = CoreState {
        next_task_id: store.meta_u64(META_NEXT_TASK_ID)?.max(1),
        next_ready_seq: store.meta_u64(META_NEXT_READY_SEQ)?.max(1),
        next_lease_id: store.meta_u64(META_NEXT_LEASE_ID)?.max(1),
        ..CoreState::default()
    };
    recover_pending(store, &mut state)?;
    for delayed in [State::Scheduled, State::Failed] {
        recover_delayed(store, &mut state, delayed)?;
    }
    recover_in_progress(store, &mut state)?;
    for (key, value) in store.scan_prefix(CF_IDEMPOTENCY, b"")? {
        let key = String::from_utf8_lossy(&key).into_owned();
        state
            .idx
            .hold_key(key, decode_u64(&value, "idempotency entry")?);
    }
    for (key, value) in store.scan_prefix(CF_META, META_COUNT_PREFIX)? {
        if let Some((finished, task_type)) = parse_count_key(&key) {
            state
                .idx
                .set_count(finished, &task_type, decode_u64(&value, "count")?);
        }
    }
    Ok(state)
}

fn recover_pending(store: &Store, state: &mut CoreState) -> Result<()> {
    let mut iter = store.iter_from(State::Pending.name(), None);
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let (task_id, task_type) = parse_index_value(value)?;
        let priority = u8::MAX - key[0];
        let ready_seq = decode_u64(&key[1..], "pending key")?;
        let type_id = state.idx.types.intern(task_type);
        state
            .idx
            .insert_ready(type_id, priority, ready_seq, task_id);
        state.idx.add_count(State::Pending, type_id);
        state.next_ready_seq = state.next_ready_seq.max(ready_seq + 1);
        state.next_task_id = state.next_task_id.max(task_id + 1);
        iter.next();
    }
    Ok(iter.status()?)
}

fn recover_delayed(store: &Store, state: &mut CoreState, delayed: State) -> Result<()> {
    let mut iter = store.iter_from(delayed.name(), None);
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let (task_id, task_type) = parse_index_value(value)?;
        let due_ms = decode_u64(&key[..8], "delayed key")?;
        let type_id = state.idx.types.intern(task_type);
        state.idx.insert_delayed(due_ms, task_id);
        state.idx.add_count(delayed, type_id);
        state.next_task_id = state.next_task_id.max(task_id + 1);
        iter.next();
    }
    Ok(iter.status()?)
}

fn recover_in_progress(store: &Store, state: &mut CoreState) -> Result<()> {
    let mut iter = store.iter_from(State::InProgress.name(), None);
    while let Some(value) = iter.value() {
        let (task_id, _) = parse_index_value(value)?;
        let record = store.record(task_id)?.ok_or_else(|| EngineError::Corrupt {
            what: format!("in_progress entry of task {task_id}"),
            detail: "the task record is missing".to_owned(),
        })?;
        if let Some(lease) = &record.lease {
            state.next_lease_id = state.next_lease_id.max(lease.lease_id + 1);
        }
        state.next_task_id = state.next_task_id.max(task_id + 1);
        state.idx.enter(&record);
        iter.next();
    }
    Ok(iter.status()?)
}
