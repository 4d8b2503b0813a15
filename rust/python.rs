//! The Python face of the engine: `tq._core`.
//!
//! Every call that touches storage releases the GIL. Engine errors become the
//! exception classes of `tq.errors`, looked up by name here and nowhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::clock::{self, Clock, SystemClock};
use crate::command::{self, Op, OpOutput};
use crate::engine::{self, TaskView};
use crate::error::EngineError;
use crate::task::{self, State, TaskRecord};

/// The `tq.errors` class an engine error is raised as.
fn error_class(err: &EngineError) -> &'static str {
    match err {
        EngineError::InvalidArgument { .. } => "BadRequest",
        EngineError::NotFound { .. } => "TaskNotFound",
        EngineError::StaleLease { .. } => "StaleLease",
        EngineError::InvalidState { .. } => "InvalidState",
        EngineError::Locked { .. } => "StoreLocked",
        EngineError::Storage(_) | EngineError::Corrupt { .. } => "StorageError",
        EngineError::Closed => "EngineClosed",
    }
}

/// Turn an engine error into the matching `tq.errors` exception.
fn to_py_err(py: Python<'_>, err: &EngineError) -> PyErr {
    let made = py
        .import("tq.errors")
        .and_then(|module| module.getattr(error_class(err)))
        .and_then(|class| class.call1((err.to_string(),)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failed) => import_failed,
    }
}

/// Run storage work without the GIL and raise its error as `tq.errors` does.
fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, EngineError> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(|err| to_py_err(py, &err))
}

/// A non-negative integer argument.
fn non_negative(field: &'static str, value: i64) -> Result<u64, EngineError> {
    u64::try_from(value).map_err(|_| EngineError::invalid(field, "a non-negative integer", value))
}

/// A count argument with an upper bound.
fn bounded(
    field: &'static str,
    value: i64,
    max: usize,
    expected: &'static str,
) -> Result<usize, EngineError> {
    usize::try_from(value)
        .ok()
        .filter(|count| *count <= max)
        .ok_or_else(|| EngineError::invalid(field, expected, value))
}

fn bytes<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, data)
}

/// A clock that moves only when told to, for tests.
#[pyclass(frozen, module = "tq._core")]
struct ManualClock {
    inner: clock::ManualClock,
}

#[pymethods]
impl ManualClock {
    #[new]
    #[pyo3(signature = (now_ms = 0))]
    fn new(py: Python<'_>, now_ms: i64) -> PyResult<Self> {
        let now_ms = non_negative("now_ms", now_ms).map_err(|e| to_py_err(py, &e))?;
        Ok(Self {
            inner: clock::ManualClock::new(now_ms),
        })
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn set(&self, py: Python<'_>, now_ms: i64) -> PyResult<()> {
        let now_ms = non_negative("now_ms", now_ms).map_err(|e| to_py_err(py, &e))?;
        self.inner.set(now_ms);
        Ok(())
    }

    fn advance(&self, py: Python<'_>, delta_ms: i64) -> PyResult<()> {
        let delta_ms = non_negative("delta_ms", delta_ms).map_err(|e| to_py_err(py, &e))?;
        self.inner.advance(delta_ms);
        Ok(())
    }
}

/// A task to submit.
#[pyclass(frozen, module = "tq._core")]
struct NewTask {
    inner: task::NewTask,
}

#[pymethods]
impl NewTask {
    #[new]
    #[pyo3(signature = (
        task_type, payload, *, priority = 100, delay_ms = 0, timeout_ms = 300_000,
        max_retries = 3, idempotency_key = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        task_type: String,
        payload: Vec<u8>,
        priority: i64,
        delay_ms: i64,
        timeout_ms: i64,
        max_retries: i64,
        idempotency_key: Option<String>,
    ) -> PyResult<Self> {
        let build = || -> Result<task::NewTask, EngineError> {
            let priority = u8::try_from(priority)
                .map_err(|_| EngineError::invalid("priority", "0 to 255", priority))?;
            let max_retries = u32::try_from(max_retries)
                .map_err(|_| EngineError::invalid("max_retries", "0 to 1000", max_retries))?;
            let task = task::NewTask {
                task_type,
                payload,
                priority,
                delay_ms: non_negative("delay_ms", delay_ms)?,
                timeout_ms: non_negative("timeout_ms", timeout_ms)?,
                max_retries,
                idempotency_key,
            };
            task.validate()?;
            Ok(task)
        };
        build()
            .map(|inner| Self { inner })
            .map_err(|err| to_py_err(py, &err))
    }

    #[getter]
    fn task_type(&self) -> &str {
        &self.inner.task_type
    }

    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.inner.payload)
    }

    #[getter]
    fn priority(&self) -> u8 {
        self.inner.priority
    }

    #[getter]
    fn delay_ms(&self) -> u64 {
        self.inner.delay_ms
    }

    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms
    }

    #[getter]
    fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    #[getter]
    fn idempotency_key(&self) -> Option<&str> {
        self.inner.idempotency_key.as_deref()
    }
}

/// Declare an operation class holding one [`Op`].
macro_rules! op_class {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(frozen, module = "tq._core")]
        struct $name {
            op: Op,
        }
    };
}

op_class!(Submit, "Operation: store a new task.");
op_class!(Claim, "Operation: lease up to `max_tasks` ready tasks.");
op_class!(Ack, "Operation: complete a leased task.");
op_class!(Fail, "Operation: end a leased attempt with an error.");
op_class!(Extend, "Operation: move a lease's deadline.");
op_class!(Cancel, "Operation: cancel a task.");
op_class!(Requeue, "Operation: move a dead letter back to pending.");
op_class!(PromoteDue, "Operation: make due delayed tasks pending.");

fn claim_op(
    worker_id: String,
    max_tasks: i64,
    task_types: Option<Vec<String>>,
    lease_grace_ms: i64,
) -> Result<Op, EngineError> {
    Ok(Op::Claim {
        worker_id,
        max_tasks: bounded("max_tasks", max_tasks, engine::MAX_CLAIM, "0 to 10000")?,
        task_types,
        lease_grace_ms: non_negative("lease_grace_ms", lease_grace_ms)?,
    })
}

fn fail_op(
    task_id: u64,
    lease_id: u64,
    error: String,
    retry_at_ms: Option<i64>,
) -> Result<Op, EngineError> {
    Ok(Op::Fail {
        task_id,
        lease_id,
        error,
        retry_at_ms: retry_at_ms
            .map(|at| non_negative("retry_at_ms", at))
            .transpose()?,
    })
}

fn extend_op(task_id: u64, lease_id: u64, deadline_ms: i64) -> Result<Op, EngineError> {
    Ok(Op::Extend {
        task_id,
        lease_id,
        deadline_ms: non_negative("deadline_ms", deadline_ms)?,
    })
}

fn promote_op(limit: i64) -> Result<Op, EngineError> {
    Ok(Op::PromoteDue {
        limit: bounded("limit", limit, usize::MAX, "a non-negative integer")?,
    })
}

#[pymethods]
impl Submit {
    #[new]
    fn new(task: &NewTask) -> Self {
        Self {
            op: Op::Submit(task.inner.clone()),
        }
    }
}

#[pymethods]
impl Claim {
    #[new]
    #[pyo3(signature = (worker_id, max_tasks, task_types = None, lease_grace_ms = 0))]
    fn new(
        py: Python<'_>,
        worker_id: String,
        max_tasks: i64,
        task_types: Option<Vec<String>>,
        lease_grace_ms: i64,
    ) -> PyResult<Self> {
        let op = claim_op(worker_id, max_tasks, task_types, lease_grace_ms)
            .map_err(|e| to_py_err(py, &e))?;
        Ok(Self { op })
    }
}

#[pymethods]
impl Ack {
    #[new]
    #[pyo3(
        signature = (task_id, lease_id, result = Vec::new()),
        text_signature = "(task_id, lease_id, result=b'')"
    )]
    fn new(task_id: u64, lease_id: u64, result: Vec<u8>) -> Self {
        Self {
            op: Op::Ack {
                task_id,
                lease_id,
                result,
            },
        }
    }
}

#[pymethods]
impl Fail {
    #[new]
    #[pyo3(signature = (task_id, lease_id, error, retry_at_ms = None))]
    fn new(
        py: Python<'_>,
        task_id: u64,
        lease_id: u64,
        error: String,
        retry_at_ms: Option<i64>,
    ) -> PyResult<Self> {
        let op = fail_op(task_id, lease_id, error, retry_at_ms).map_err(|e| to_py_err(py, &e))?;
        Ok(Self { op })
    }
}

#[pymethods]
impl Extend {
    #[new]
    fn new(py: Python<'_>, task_id: u64, lease_id: u64, deadline_ms: i64) -> PyResult<Self> {
        let op = extend_op(task_id, lease_id, deadline_ms).map_err(|e| to_py_err(py, &e))?;
        Ok(Self { op })
    }
}

#[pymethods]
impl Cancel {
    #[new]
    fn new(task_id: u64) -> Self {
        Self {
            op: Op::Cancel { task_id },
        }
    }
}

#[pymethods]
impl Requeue {
    #[new]
    fn new(task_id: u64) -> Self {
        Self {
            op: Op::Requeue { task_id },
        }
    }
}

#[pymethods]
impl PromoteDue {
    #[new]
    #[pyo3(signature = (limit = 10_000))]
    fn new(py: Python<'_>, limit: i64) -> PyResult<Self> {
        let op = promote_op(limit).map_err(|e| to_py_err(py, &e))?;
        Ok(Self { op })
    }
}

/// The [`Op`] held by any operation object.
fn extract_op(item: &Bound<'_, PyAny>) -> PyResult<Op> {
    macro_rules! try_class {
        ($($class:ident),*) => {
            $(if let Ok(op) = item.cast::<$class>() {
                return Ok(op.get().op.clone());
            })*
        };
    }
    try_class!(Submit, Claim, Ack, Fail, Extend, Cancel, Requeue, PromoteDue);
    Err(PyTypeError::new_err(format!(
        "ops: expected Submit, Claim, Ack, Fail, Extend, Cancel, Requeue or PromoteDue, \
         got {}",
        item.get_type().name()?
    )))
}

/// The outcome of a submit.
#[pyclass(frozen, get_all, module = "tq._core")]
struct Submitted {
    task_id: u64,
    created: bool,
}

/// A task handed to a worker under a new lease.
#[pyclass(frozen, module = "tq._core")]
struct ClaimedTask {
    inner: command::ClaimedTask,
}

#[pymethods]
impl ClaimedTask {
    #[getter]
    fn task_id(&self) -> u64 {
        self.inner.task_id
    }
    #[getter]
    fn task_type(&self) -> &str {
        &self.inner.task_type
    }
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.inner.payload)
    }
    #[getter]
    fn priority(&self) -> u8 {
        self.inner.priority
    }
    #[getter]
    fn lease_id(&self) -> u64 {
        self.inner.lease_id
    }
    #[getter]
    fn deadline_ms(&self) -> u64 {
        self.inner.deadline_ms
    }
    #[getter]
    fn attempt(&self) -> u32 {
        self.inner.attempt
    }
    #[getter]
    fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms
    }
    #[getter]
    fn submitted_ms(&self) -> u64 {
        self.inner.submitted_ms
    }
    fn __repr__(&self) -> String {
        format!(
            "ClaimedTask(task_id={}, task_type={:?}, lease_id={}, attempt={})",
            self.inner.task_id, self.inner.task_type, self.inner.lease_id, self.inner.attempt
        )
    }
}

/// A lease currently held.
#[pyclass(frozen, get_all, module = "tq._core")]
struct Lease {
    task_id: u64,
    lease_id: u64,
    worker_id: String,
    deadline_ms: u64,
    claimed_ms: u64,
    task_type: String,
    attempt: u32,
    max_retries: u32,
}

impl From<engine::LeaseInfo> for Lease {
    fn from(info: engine::LeaseInfo) -> Self {
        Self {
            task_id: info.task_id,
            lease_id: info.lease_id,
            worker_id: info.worker_id,
            deadline_ms: info.deadline_ms,
            claimed_ms: info.claimed_ms,
            task_type: info.task_type,
            attempt: info.attempt,
            max_retries: info.max_retries,
        }
    }
}

/// One attempt in a task's history.
#[pyclass(frozen, get_all, module = "tq._core")]
struct Attempt {
    attempt: u32,
    worker_id: String,
    started_ms: u64,
    ended_ms: Option<u64>,
    outcome: &'static str,
    error: Option<String>,
}

/// A stored task with everything known about it.
#[pyclass(frozen, module = "tq._core")]
struct Task {
    view: TaskView,
}

impl Task {
    fn record(&self) -> &TaskRecord {
        &self.view.record
    }
}

#[pymethods]
impl Task {
    #[getter]
    fn task_id(&self) -> u64 {
        self.record().id
    }
    #[getter]
    fn task_type(&self) -> &str {
        &self.record().task_type
    }
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.view.payload)
    }
    #[getter]
    fn priority(&self) -> u8 {
        self.record().priority
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.record().state.name()
    }
    #[getter]
    fn run_at_ms(&self) -> u64 {
        self.record().run_at_ms
    }
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.record().timeout_ms
    }
    #[getter]
    fn max_retries(&self) -> u32 {
        self.record().max_retries
    }
    #[getter]
    fn attempts(&self) -> u32 {
        self.record().attempts
    }
    #[getter]
    fn idempotency_key(&self) -> Option<&str> {
        self.record().idempotency_key.as_deref()
    }
    #[getter]
    fn created_ms(&self) -> u64 {
        self.record().created_ms
    }
    #[getter]
    fn updated_ms(&self) -> u64 {
        self.record().updated_ms
    }
    #[getter]
    fn finished_ms(&self) -> Option<u64> {
        self.record().finished_ms
    }
    #[getter]
    fn last_error(&self) -> Option<&str> {
        self.record().last_error.as_deref()
    }
    #[getter]
    fn result<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.record().result.as_deref().map(|data| bytes(py, data))
    }
    #[getter]
    fn lease_id(&self) -> Option<u64> {
        self.record().lease.as_ref().map(|lease| lease.lease_id)
    }
    #[getter]
    fn worker_id(&self) -> Option<&str> {
        self.record()
            .lease
            .as_ref()
            .map(|lease| lease.worker_id.as_str())
    }
    #[getter]
    fn lease_deadline_ms(&self) -> Option<u64> {
        self.record().lease.as_ref().map(|lease| lease.deadline_ms)
    }
    #[getter]
    fn cancel_requested(&self) -> bool {
        self.record().cancel_requested
    }
    #[getter]
    fn history(&self) -> Vec<Attempt> {
        self.record()
            .history
            .iter()
            .map(|attempt| Attempt {
                attempt: attempt.attempt,
                worker_id: attempt.worker_id.clone(),
                started_ms: attempt.started_ms,
                ended_ms: attempt.ended_ms,
                outcome: attempt.outcome.name(),
                error: attempt.error.clone(),
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        let record = self.record();
        format!(
            "Task(task_id={}, task_type={:?}, state={:?}, priority={}, attempts={})",
            record.id,
            record.task_type,
            record.state.name(),
            record.priority,
            record.attempts
        )
    }
}

/// One page of a listing.
#[pyclass(frozen, module = "tq._core")]
struct Page {
    tasks: Vec<Py<Task>>,
    next_cursor: Option<Vec<u8>>,
}

#[pymethods]
impl Page {
    #[getter]
    fn tasks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.tasks.iter().map(|task| task.clone_ref(py)))
    }
    #[getter]
    fn next_cursor<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.next_cursor.as_deref().map(|cursor| bytes(py, cursor))
    }
}

/// Task counts.
#[pyclass(frozen, get_all, module = "tq._core")]
struct Counts {
    by_state: BTreeMap<&'static str, u64>,
    by_type: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pending_by_tier: BTreeMap<&'static str, u64>,
}

/// The durable task store and its in-memory indexes.
#[pyclass(frozen, module = "tq._core")]
struct Engine {
    inner: engine::Engine,
}

impl Engine {
    fn execute(&self, py: Python<'_>, op: Op) -> PyResult<OpOutput> {
        detached(py, || self.inner.execute(op))
    }
}

fn output_to_py(py: Python<'_>, output: OpOutput) -> PyResult<Py<PyAny>> {
    Ok(match output {
        OpOutput::Submitted { task_id, created } => {
            Py::new(py, Submitted { task_id, created })?.into_any()
        }
        OpOutput::Claimed(tasks) => claimed_list(py, tasks)?.into_any().unbind(),
        OpOutput::Done => py.None(),
        OpOutput::State(state) => state.name().into_pyobject(py)?.into_any().unbind(),
        OpOutput::CancelRequested(flag) => flag.into_pyobject(py)?.to_owned().into_any().unbind(),
        OpOutput::Count(count) => count.into_pyobject(py)?.into_any().unbind(),
    })
}

fn claimed_list(py: Python<'_>, tasks: Vec<command::ClaimedTask>) -> PyResult<Bound<'_, PyList>> {
    let items = tasks
        .into_iter()
        .map(|inner| Py::new(py, ClaimedTask { inner }))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn unexpected(output: &OpOutput) -> PyErr {
    PyTypeError::new_err(format!("engine returned an unexpected output: {output:?}"))
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (path, *, fsync = true, clock = None))]
    fn new(
        py: Python<'_>,
        path: String,
        fsync: bool,
        clock: Option<&ManualClock>,
    ) -> PyResult<Self> {
        let clock: Arc<dyn Clock> = match clock {
            Some(manual) => Arc::new(manual.inner.clone()),
            None => Arc::new(SystemClock),
        };
        let inner = detached(py, || engine::Engine::open(&path, fsync, clock))?;
        Ok(Self { inner })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, PyTuple>) {
        self.close(py);
    }

    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    #[getter]
    fn fsync(&self) -> bool {
        self.inner.fsync()
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn commit(&self, py: Python<'_>, ops: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyAny>>> {
        let ops = ops
            .try_iter()?
            .map(|item| extract_op(&item?))
            .collect::<PyResult<Vec<Op>>>()?;
        let results = detached(py, || self.inner.commit(ops))?;
        results
            .into_iter()
            .map(|result| match result {
                Ok(output) => output_to_py(py, output),
                Err(err) => Ok(to_py_err(py, &err).into_value(py).into_any()),
            })
            .collect()
    }

    fn submit(&self, py: Python<'_>, task: &NewTask) -> PyResult<Submitted> {
        match self.execute(py, Op::Submit(task.inner.clone()))? {
            OpOutput::Submitted { task_id, created } => Ok(Submitted { task_id, created }),
            other => Err(unexpected(&other)),
        }
    }

    fn submit_many<'py>(
        &self,
        py: Python<'py>,
        tasks: Vec<PyRef<'py, NewTask>>,
    ) -> PyResult<Vec<Submitted>> {
        let ops = tasks
            .iter()
            .map(|task| Op::Submit(task.inner.clone()))
            .collect();
        let results = detached(py, || self.inner.commit(ops))?;
        results
            .into_iter()
            .map(|result| match result {
                Ok(OpOutput::Submitted { task_id, created }) => Ok(Submitted { task_id, created }),
                Ok(other) => Err(unexpected(&other)),
                Err(err) => Err(to_py_err(py, &err)),
            })
            .collect()
    }

    #[pyo3(signature = (worker_id, max_tasks, task_types = None, lease_grace_ms = 0))]
    fn claim<'py>(
        &self,
        py: Python<'py>,
        worker_id: String,
        max_tasks: i64,
        task_types: Option<Vec<String>>,
        lease_grace_ms: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let op = claim_op(worker_id, max_tasks, task_types, lease_grace_ms)
            .map_err(|e| to_py_err(py, &e))?;
        match self.execute(py, op)? {
            OpOutput::Claimed(tasks) => claimed_list(py, tasks),
            other => Err(unexpected(&other)),
        }
    }

    #[pyo3(
        signature = (task_id, lease_id, result = Vec::new()),
        text_signature = "($self, task_id, lease_id, result=b'')"
    )]
    fn ack(&self, py: Python<'_>, task_id: u64, lease_id: u64, result: Vec<u8>) -> PyResult<()> {
        self.execute(
            py,
            Op::Ack {
                task_id,
                lease_id,
                result,
            },
        )?;
        Ok(())
    }

    #[pyo3(signature = (task_id, lease_id, error, retry_at_ms = None))]
    fn fail(
        &self,
        py: Python<'_>,
        task_id: u64,
        lease_id: u64,
        error: String,
        retry_at_ms: Option<i64>,
    ) -> PyResult<&'static str> {
        let op = fail_op(task_id, lease_id, error, retry_at_ms).map_err(|e| to_py_err(py, &e))?;
        match self.execute(py, op)? {
            OpOutput::State(state) => Ok(state.name()),
            other => Err(unexpected(&other)),
        }
    }

    fn extend(
        &self,
        py: Python<'_>,
        task_id: u64,
        lease_id: u64,
        deadline_ms: i64,
    ) -> PyResult<bool> {
        let op = extend_op(task_id, lease_id, deadline_ms).map_err(|e| to_py_err(py, &e))?;
        match self.execute(py, op)? {
            OpOutput::CancelRequested(flag) => Ok(flag),
            other => Err(unexpected(&other)),
        }
    }

    fn cancel(&self, py: Python<'_>, task_id: u64) -> PyResult<&'static str> {
        match self.execute(py, Op::Cancel { task_id })? {
            OpOutput::State(state) => Ok(state.name()),
            other => Err(unexpected(&other)),
        }
    }

    fn requeue(&self, py: Python<'_>, task_id: u64) -> PyResult<()> {
        self.execute(py, Op::Requeue { task_id })?;
        Ok(())
    }

    #[pyo3(signature = (limit = 10_000))]
    fn promote_due(&self, py: Python<'_>, limit: i64) -> PyResult<u64> {
        let op = promote_op(limit).map_err(|e| to_py_err(py, &e))?;
        self.count(py, op)
    }

    #[pyo3(signature = (task_type = None, limit = 1000))]
    fn requeue_dead_letters(
        &self,
        py: Python<'_>,
        task_type: Option<String>,
        limit: i64,
    ) -> PyResult<u64> {
        let limit = bounded("limit", limit, usize::MAX, "a non-negative integer")
            .map_err(|e| to_py_err(py, &e))?;
        self.count(py, Op::RequeueDeadLetters { task_type, limit })
    }

    #[pyo3(signature = (before_ms = None, task_type = None, limit = 1000))]
    fn purge_dead_letters(
        &self,
        py: Python<'_>,
        before_ms: Option<i64>,
        task_type: Option<String>,
        limit: i64,
    ) -> PyResult<u64> {
        let op = (|| {
            Ok(Op::PurgeDeadLetters {
                before_ms: before_ms
                    .map(|at| non_negative("before_ms", at))
                    .transpose()?,
                task_type,
                limit: bounded("limit", limit, usize::MAX, "a non-negative integer")?,
            })
        })()
        .map_err(|e: EngineError| to_py_err(py, &e))?;
        self.count(py, op)
    }

    #[pyo3(signature = (completed_before_ms, dead_letter_before_ms, limit = 1000))]
    fn sweep(
        &self,
        py: Python<'_>,
        completed_before_ms: i64,
        dead_letter_before_ms: i64,
        limit: i64,
    ) -> PyResult<u64> {
        let op = (|| {
            Ok(Op::Sweep {
                completed_before_ms: non_negative("completed_before_ms", completed_before_ms)?,
                dead_letter_before_ms: non_negative(
                    "dead_letter_before_ms",
                    dead_letter_before_ms,
                )?,
                limit: bounded("limit", limit, usize::MAX, "a non-negative integer")?,
            })
        })()
        .map_err(|e: EngineError| to_py_err(py, &e))?;
        self.count(py, op)
    }

    fn get(&self, py: Python<'_>, task_id: u64) -> PyResult<Task> {
        let view = detached(py, || self.inner.get(task_id))?;
        Ok(Task { view })
    }

    #[pyo3(signature = (state, task_type = None, limit = 100, cursor = None))]
    fn list_tasks(
        &self,
        py: Python<'_>,
        state: &str,
        task_type: Option<String>,
        limit: i64,
        cursor: Option<Vec<u8>>,
    ) -> PyResult<Page> {
        let state = State::parse(state).map_err(|e| to_py_err(py, &e))?;
        let limit = bounded("limit", limit, engine::MAX_PAGE, "1 to 1000")
            .map_err(|e| to_py_err(py, &e))?;
        let page = detached(py, || {
            self.inner
                .list(state, task_type.as_deref(), limit, cursor.as_deref())
        })?;
        let tasks = page
            .tasks
            .into_iter()
            .map(|view| Py::new(py, Task { view }))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Page {
            tasks,
            next_cursor: page.next_cursor,
        })
    }

    fn counts(&self, py: Python<'_>) -> PyResult<Counts> {
        let counts = detached(py, || self.inner.counts())?;
        Ok(Counts {
            by_state: counts.by_state,
            by_type: counts.by_type,
            pending_by_tier: counts.pending_by_tier,
        })
    }

    #[pyo3(signature = (limit = 1000))]
    fn expired_leases(&self, py: Python<'_>, limit: i64) -> PyResult<Vec<Lease>> {
        let limit = bounded("limit", limit, usize::MAX, "a non-negative integer")
            .map_err(|e| to_py_err(py, &e))?;
        let leases = detached(py, || self.inner.expired_leases(limit))?;
        Ok(leases.into_iter().map(Lease::from).collect())
    }

    fn worker_leases(&self, py: Python<'_>, worker_id: &str) -> PyResult<Vec<Lease>> {
        let leases = detached(py, || self.inner.worker_leases(worker_id))?;
        Ok(leases.into_iter().map(Lease::from).collect())
    }

    fn queue_depth(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || self.inner.queue_depth())
    }

    fn next_due_ms(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        detached(py, || self.inner.next_due_ms())
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }
}

impl Engine {
    fn count(&self, py: Python<'_>, op: Op) -> PyResult<u64> {
        match self.execute(py, op)? {
            OpOutput::Count(count) => Ok(count),
            other => Err(unexpected(&other)),
        }
    }
}

/// The tq engine, as the Python module `tq._core`.
#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let states: Vec<&str> = State::ALL.iter().map(|state| state.name()).collect();
    module.add("STATES", PyTuple::new(module.py(), states)?)?;
    module.add_class::<ManualClock>()?;
    module.add_class::<NewTask>()?;
    module.add_class::<Submit>()?;
    module.add_class::<Claim>()?;
    module.add_class::<Ack>()?;
    module.add_class::<Fail>()?;
    module.add_class::<Extend>()?;
    module.add_class::<Cancel>()?;
    module.add_class::<Requeue>()?;
    module.add_class::<PromoteDue>()?;
    module.add_class::<Submitted>()?;
    module.add_class::<ClaimedTask>()?;
    module.add_class::<Lease>()?;
    module.add_class::<Attempt>()?;
    module.add_class::<Task>()?;
    module.add_class::<Page>()?;
    module.add_class::<Counts>()?;
    module.add_class::<Engine>()?;
    Ok(())
}
