//! The in-memory indexes: compact enough to hold millions of tasks, rebuilt from
//! the store on open. Payloads and records stay in RocksDB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::task::{priority_tier, State, TaskRecord};

/// A small integer standing for a task type, so indexes do not repeat strings.
pub type TypeId = u32;

/// Task types seen so far, interned.
#[derive(Debug, Default)]
pub struct TypeTable {
    ids: HashMap<Arc<str>, TypeId>,
    names: Vec<Arc<str>>,
}

impl TypeTable {
    /// The id of `name`, interning it on first sight.
    pub fn intern(&mut self, name: &str) -> TypeId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as TypeId;
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// The id of `name` if it was ever seen.
    pub fn get(&self, name: &str) -> Option<TypeId> {
        self.ids.get(name).copied()
    }

    /// The name of an interned id.
    pub fn name(&self, id: TypeId) -> &str {
        &self.names[id as usize]
    }
}

/// A pending task's place in its type's ready queue: (255 − priority, sequence).
pub type ReadyKey = (u8, u64);

/// A lease as the indexes keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEntry {
    /// The lease's id.
    pub lease_id: u64,
    /// The worker holding it.
    pub worker_id: Arc<str>,
    /// When it expires.
    pub deadline_ms: u64,
    /// When it was claimed.
    pub claimed_ms: u64,
    /// The leased task's type.
    pub type_id: TypeId,
    /// Which attempt it is.
    pub attempt: u32,
    /// The task's retry limit.
    pub max_retries: u32,
}

/// Every in-memory index of the engine.
#[derive(Debug, Default)]
pub struct Indexes {
    /// Task types, interned.
    pub types: TypeTable,
    ready: HashMap<TypeId, BTreeMap<ReadyKey, u64>>,
    pending_by_tier: [u64; 3],
    schedule: BTreeSet<(u64, u64)>,
    leases: HashMap<u64, LeaseEntry>,
    deadlines: BTreeSet<(u64, u64)>,
    by_worker: HashMap<Arc<str>, BTreeSet<u64>>,
    idempotency: HashMap<String, u64>,
    counts: HashMap<(State, TypeId), u64>,
}

impl Indexes {
    /// Index a record that has just entered its state.
    pub fn enter(&mut self, record: &TaskRecord) {
        let type_id = self.types.intern(&record.task_type);
        *self.counts.entry((record.state, type_id)).or_default() += 1;
        match record.state {
            State::Pending => {
                self.insert_ready(type_id, record.priority, record.ready_seq, record.id)
            }
            State::Scheduled | State::Failed => {
                self.schedule.insert((record.run_at_ms, record.id));
            }
            State::InProgress => {
                if let Some(lease) = &record.lease {
                    let entry = LeaseEntry {
                        lease_id: lease.lease_id,
                        worker_id: Arc::from(lease.worker_id.as_str()),
                        deadline_ms: lease.deadline_ms,
                        claimed_ms: lease.claimed_ms,
                        type_id,
                        attempt: record.attempts,
                        max_retries: record.max_retries,
                    };
                    self.insert_lease(record.id, entry);
                }
            }
            State::Completed | State::DeadLetter | State::Cancelled => {}
        }
    }

    /// Drop a record from the indexes of the state it is leaving.
    pub fn leave(&mut self, record: &TaskRecord) {
        let type_id = self.types.intern(&record.task_type);
        if let Some(count) = self.counts.get_mut(&(record.state, type_id)) {
            *count = count.saturating_sub(1);
        }
        match record.state {
            State::Pending => {
                let key = (u8::MAX - record.priority, record.ready_seq);
                if let Some(queue) = self.ready.get_mut(&type_id) {
                    if queue.remove(&key).is_some() {
                        self.pending_by_tier[priority_tier(record.priority)] -= 1;
                    }
                }
            }
            State::Scheduled | State::Failed => {
                self.schedule.remove(&(record.run_at_ms, record.id));
            }
            State::InProgress => self.remove_lease(record.id),
            State::Completed | State::DeadLetter | State::Cancelled => {}
        }
    }

    /// Add a pending task to its type's ready queue.
    pub fn insert_ready(&mut self, type_id: TypeId, priority: u8, ready_seq: u64, id: u64) {
        let queue = self.ready.entry(type_id).or_default();
        if queue.insert((u8::MAX - priority, ready_seq), id).is_none() {
            self.pending_by_tier[priority_tier(priority)] += 1;
        }
    }

    /// Add a scheduled or failed task to the delayed schedule.
    pub fn insert_delayed(&mut self, due_ms: u64, id: u64) {
        self.schedule.insert((due_ms, id));
    }

    fn insert_lease(&mut self, id: u64, entry: LeaseEntry) {
        self.deadlines.insert((entry.deadline_ms, id));
        self.by_worker
            .entry(Arc::clone(&entry.worker_id))
            .or_default()
            .insert(id);
        self.leases.insert(id, entry);
    }

    fn remove_lease(&mut self, id: u64) {
        let Some(entry) = self.leases.remove(&id) else {
            return;
        };
        self.deadlines.remove(&(entry.deadline_ms, id));
        if let Some(ids) = self.by_worker.get_mut(&entry.worker_id) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_worker.remove(&entry.worker_id);
            }
        }
    }

    /// Up to `limit` pending task ids in claim order (priority, then FIFO),
    /// only of `types` when given.
    pub fn ready_in_order(&self, types: Option<&[TypeId]>, limit: usize) -> Vec<u64> {
        let queues: Vec<&BTreeMap<ReadyKey, u64>> = match types {
            Some(types) => types.iter().filter_map(|id| self.ready.get(id)).collect(),
            None => self.ready.values().collect(),
        };
        let mut candidates: Vec<(ReadyKey, u64)> = queues
            .iter()
            .flat_map(|queue| queue.iter().take(limit).map(|(key, id)| (*key, *id)))
            .collect();
        candidates.sort_unstable();
        candidates.truncate(limit);
        candidates.into_iter().map(|(_, id)| id).collect()
    }

    /// Up to `limit` ids of delayed tasks due at or before `now_ms`, earliest first.
    pub fn due(&self, now_ms: u64, limit: usize) -> Vec<u64> {
        self.schedule
            .iter()
            .take_while(|(due, _)| *due <= now_ms)
            .take(limit)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Whether any delayed task is due at or before `now_ms`.
    pub fn any_due(&self, now_ms: u64) -> bool {
        self.schedule.first().is_some_and(|(due, _)| *due <= now_ms)
    }

    /// The earliest due time or lease deadline.
    pub fn next_due_ms(&self) -> Option<u64> {
        let delayed = self.schedule.first().map(|(due, _)| *due);
        let lease = self.deadlines.first().map(|(deadline, _)| *deadline);
        match (delayed, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The current lease of a task.
    pub fn lease(&self, id: u64) -> Option<&LeaseEntry> {
        self.leases.get(&id)
    }

    /// Leases with deadlines at or before `now_ms`, earliest first.
    pub fn expired(&self, now_ms: u64, limit: usize) -> Vec<(u64, &LeaseEntry)> {
        self.deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .take(limit)
            .filter_map(|(_, id)| self.leases.get(id).map(|entry| (*id, entry)))
            .collect()
    }

    /// The leases a worker holds, by task id.
    pub fn worker_leases(&self, worker_id: &str) -> Vec<(u64, &LeaseEntry)> {
        self.by_worker
            .get(worker_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.leases.get(id).map(|entry| (*id, entry)))
            .collect()
    }

    /// The task holding an idempotency key.
    pub fn idempotent(&self, key: &str) -> Option<u64> {
        self.idempotency.get(key).copied()
    }

    /// Record which task holds an idempotency key.
    pub fn hold_key(&mut self, key: String, id: u64) {
        self.idempotency.insert(key, id);
    }

    /// Forget an idempotency key if `id` holds it.
    pub fn release_key(&mut self, key: &str, id: u64) -> bool {
        if self.idempotency.get(key) == Some(&id) {
            self.idempotency.remove(key);
            return true;
        }
        false
    }

    /// Set a counter while recovering.
    pub fn set_count(&mut self, state: State, task_type: &str, count: u64) {
        let type_id = self.types.intern(task_type);
        self.counts.insert((state, type_id), count);
    }

    /// Add to a counter while recovering.
    pub fn add_count(&mut self, state: State, type_id: TypeId) {
        *self.counts.entry((state, type_id)).or_default() += 1;
    }

    /// How many tasks of `task_type` are in `state`.
    pub fn count(&self, state: State, task_type: &str) -> u64 {
        self.types
            .get(task_type)
            .and_then(|id| self.counts.get(&(state, id)))
            .copied()
            .unwrap_or(0)
    }

    /// Every non-zero counter as (state, type, count).
    pub fn counts(&self) -> impl Iterator<Item = (State, &str, u64)> {
        self.counts
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|((state, type_id), count)| (*state, self.types.name(*type_id), *count))
    }

    /// Tasks waiting to run: pending, scheduled and failed.
    pub fn queue_depth(&self) -> u64 {
        self.pending_by_tier.iter().sum::<u64>() + self.schedule.len() as u64
    }

    /// Pending tasks per priority tier (low, normal, high).
    pub fn pending_by_tier(&self) -> [u64; 3] {
        self.pending_by_tier
    }
}
