//! RocksDB layout: column families, key encodings, and the reads the engine needs.
//!
//! Layout:
//! - `tasks`: task id → [`TaskRecord`] (everything but the payload).
//! - `payloads`: task id → payload bytes, written once at submit.
//! - one index family per [`State`], named after it, whose keys sort in the
//!   order tasks leave that state and whose values are the task id and type:
//!   `pending` by (255 − priority, ready sequence), so a forward scan yields
//!   priority order then FIFO; `scheduled` and `failed` by (due time, id);
//!   `in_progress` by id; the finished states by (finish time, id), so the
//!   retention sweep reads the oldest first.
//! - `idempotency`: idempotency key → task id.
//! - `meta`: the id counters and the counts of finished tasks.
//!
//! Integers in keys are big-endian so byte order is numeric order.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRawIterator, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::error::{EngineError, Result};
use crate::task::{State, TaskRecord};

/// Family holding task records.
pub const CF_TASKS: &str = "tasks";
/// Family holding payloads.
pub const CF_PAYLOADS: &str = "payloads";
/// Family holding idempotency keys.
pub const CF_IDEMPOTENCY: &str = "idempotency";
/// Family holding counters.
pub const CF_META: &str = "meta";

/// Meta key of the next task id to hand out.
pub const META_NEXT_TASK_ID: &[u8] = b"next_task_id";
/// Meta key of the next ready sequence number.
pub const META_NEXT_READY_SEQ: &[u8] = b"next_ready_seq";
/// Meta key of the next lease id.
pub const META_NEXT_LEASE_ID: &[u8] = b"next_lease_id";
/// Prefix of the meta keys counting finished tasks: then state name, `/`, type.
pub const META_COUNT_PREFIX: &[u8] = b"count/";

/// Memory for memtables across all families.
const WRITE_BUFFER_BYTES: usize = 64 << 20;
/// Block cache shared by all families.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// The open RocksDB database.
pub struct Store {
    db: DB,
    write_options: WriteOptions,
    path: String,
}

impl Store {
    /// Open (or create) the store at `path`.
    ///
    /// # Errors
    /// [`EngineError::Locked`] when the directory is open already, and
    /// [`EngineError::Storage`] for any other failure.
    pub fn open(path: &str, fsync: bool) -> Result<Self> {
        let (options, families) = open_options();
        let db = DB::open_cf_descriptors(&options, Path::new(path), families)
            .map_err(|err| open_error(path, err))?;
        Ok(Self::with_db(db, path, fsync))
    }

    /// Open the store at `path` for reading only, without its lock.
    ///
    /// What a broker falls back to when its store failed a write and cannot
    /// be opened for writing again yet (a full disk): reads go on, every
    /// write fails.
    ///
    /// # Errors
    /// [`EngineError::Storage`] when it cannot be read.
    pub fn open_read_only(path: &str) -> Result<Self> {
        let (options, families) = open_options();
        let db = DB::open_cf_descriptors_read_only(&options, Path::new(path), families, false)
            .map_err(|err| open_error(path, err))?;
        Ok(Self::with_db(db, path, false))
    }

    fn with_db(db: DB, path: &str, fsync: bool) -> Self {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(fsync);
        Self {
            db,
            write_options,
            path: path.to_owned(),
        }
    }

    /// The data directory.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The handle of a family opened with the store.
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family in `family_names` is opened with the store.
        self.db
            .cf_handle(name)
            .expect("column family opened with the store")
    }

    /// The index family of a state.
    pub fn state_cf(&self, state: State) -> &ColumnFamily {
        self.cf(state.name())
    }

    /// Write a batch atomically; with fsync on, only return once it is on disk.
    ///
    /// # Errors
    /// [`EngineError::Storage`] when the write or its fsync fails.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.db.write_opt(batch, &self.write_options)?;
        Ok(())
    }

    /// Write a batch without waiting for the disk, whatever the fsync setting.
    ///
    /// Only for the crash point between a write and its fsync.
    ///
    /// # Errors
    /// [`EngineError::Storage`] when the write fails.
    pub fn write_unsynced(&self, batch: WriteBatch) -> Result<()> {
        self.db.write(batch)?;
        Ok(())
    }

    /// Read a task record.
    ///
    /// # Errors
    /// [`EngineError::Storage`] or [`EngineError::Corrupt`].
    pub fn record(&self, id: u64) -> Result<Option<TaskRecord>> {
        match self.db.get_pinned_cf(self.cf(CF_TASKS), id.to_be_bytes())? {
            Some(bytes) => TaskRecord::decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Read a task's payload.
    ///
    /// # Errors
    /// [`EngineError::Storage`].
    pub fn payload(&self, id: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_PAYLOADS), id.to_be_bytes())?)
    }

    /// Read a counter from `meta`, 0 when absent.
    ///
    /// # Errors
    /// [`EngineError::Storage`] or [`EngineError::Corrupt`].
    pub fn meta_u64(&self, key: &[u8]) -> Result<u64> {
        match self.db.get_pinned_cf(self.cf(CF_META), key)? {
            Some(bytes) => decode_u64(&bytes, "meta counter"),
            None => Ok(0),
        }
    }

    /// A raw iterator over a family, positioned at its first key or at `from`.
    pub fn iter_from(&self, name: &str, from: Option<&[u8]>) -> DBRawIterator<'_> {
        let mut iter = self.db.raw_iterator_cf(self.cf(name));
        match from {
            Some(key) => iter.seek(key),
            None => iter.seek_to_first(),
        }
        iter
    }

    /// Every key and value of a family with `prefix`.
    ///
    /// # Errors
    /// [`EngineError::Storage`].
    pub fn scan_prefix(&self, name: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mode = IteratorMode::From(prefix, Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(name), mode) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }
}

/// Names of every column family the store opens.
fn family_names() -> impl Iterator<Item = &'static str> {
    [CF_TASKS, CF_PAYLOADS, CF_IDEMPOTENCY, CF_META]
        .into_iter()
        .chain(State::ALL.into_iter().map(State::name))
}

/// Per-family tuning: bloom filters for the point-read families, LZ4 for the
/// bulky ones.
fn family_options(name: &str, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    let mut options = Options::default();
    match name {
        CF_TASKS | CF_PAYLOADS | CF_IDEMPOTENCY => {
            table.set_bloom_filter(10.0, false);
            options.set_compression_type(DBCompressionType::Lz4);
        }
        _ => options.set_compression_type(DBCompressionType::None),
    }
    options.set_block_based_table_factory(&table);
    options
}

/// The options tq opens every store with, and its column families.
fn open_options() -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_db_write_buffer_size(WRITE_BUFFER_BYTES);
    options.set_max_background_jobs(2);
    options.set_keep_log_file_num(4);
    let families = family_names()
        .map(|name| ColumnFamilyDescriptor::new(name, family_options(name, &cache)))
        .collect();
    (options, families)
}

/// Tell a locked directory apart from other open failures.
fn open_error(path: &str, err: rocksdb::Error) -> EngineError {
    let text = err.into_string();
    if text.contains("LOCK") || text.contains("lock") {
        EngineError::Locked {
            path: path.to_owned(),
        }
    } else {
        EngineError::Storage(format!("cannot open data dir {path}: {text}"))
    }
}

/// Decode a big-endian u64.
///
/// # Errors
/// [`EngineError::Corrupt`] when `bytes` is not 8 bytes long.
pub fn decode_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| EngineError::Corrupt {
        what: what.to_owned(),
        detail: format!("expected 8 bytes, got {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// The index key of a record in its state's family.
pub fn index_key(record: &TaskRecord) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    match record.state {
        State::Pending => {
            key.push(u8::MAX - record.priority);
            key.extend(record.ready_seq.to_be_bytes());
        }
        State::Scheduled | State::Failed => {
            key.extend(record.run_at_ms.to_be_bytes());
            key.extend(record.id.to_be_bytes());
        }
        State::InProgress => key.extend(record.id.to_be_bytes()),
        State::Completed | State::DeadLetter | State::Cancelled => {
            key.extend(record.finished_ms.unwrap_or(0).to_be_bytes());
            key.extend(record.id.to_be_bytes());
        }
    }
    key
}

/// The index value of a record: its id, then its type.
pub fn index_value(record: &TaskRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + record.task_type.len());
    value.extend(record.id.to_be_bytes());
    value.extend(record.task_type.as_bytes());
    value
}

/// Split an index value into id and type.
///
/// # Errors
/// [`EngineError::Corrupt`] when the value is too short or not UTF-8.
pub fn parse_index_value(value: &[u8]) -> Result<(u64, &str)> {
    let corrupt = |detail: String| EngineError::Corrupt {
        what: "index entry".to_owned(),
        detail,
    };
    if value.len() < 8 {
        return Err(corrupt(format!(
            "{} bytes, expected at least 8",
            value.len()
        )));
    }
    let (id, task_type) = value.split_at(8);
    let task_type = std::str::from_utf8(task_type).map_err(|err| corrupt(err.to_string()))?;
    Ok((decode_u64(id, "index entry")?, task_type))
}

/// The meta key counting finished tasks of one state and type.
pub fn count_key(state: State, task_type: &str) -> Vec<u8> {
    let mut key = META_COUNT_PREFIX.to_vec();
    key.extend(state.name().as_bytes());
    key.push(b'/');
    key.extend(task_type.as_bytes());
    key
}

/// Split a count key back into state and type.
pub fn parse_count_key(key: &[u8]) -> Option<(State, String)> {
    let rest = std::str::from_utf8(key.strip_prefix(META_COUNT_PREFIX)?).ok()?;
    let (state, task_type) = rest.split_once('/')?;
    Some((State::parse(state).ok()?, task_type.to_owned()))
}

/// Put a record, its index entry and nothing else into a batch.
pub fn put_record(store: &Store, batch: &mut WriteBatch, record: &TaskRecord) {
    batch.put_cf(store.cf(CF_TASKS), record.id.to_be_bytes(), record.encode());
    batch.put_cf(
        store.state_cf(record.state),
        index_key(record),
        index_value(record),
    );
}

/// Delete a record's index entry for the state it is in.
pub fn delete_index(store: &Store, batch: &mut WriteBatch, record: &TaskRecord) {
    batch.delete_cf(store.state_cf(record.state), index_key(record));
}
