from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("task_type", "payload", "priority", "delay_ms", "timeout_ms", "max_retries", "idempotency_key")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    payload: bytes
    priority: int
    delay_ms: int
    timeout_ms: int
    max_retries: int
    idempotency_key: str
    def __init__(self, task_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., priority: _Optional[int] = ..., delay_ms: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., max_retries: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("task_id", "created")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    created: bool
    def __init__(self, task_id: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class SubmitManyRequest(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[SubmitRequest]
    def __init__(self, tasks: _Optional[_Iterable[_Union[SubmitRequest, _Mapping]]] = ...) -> None: ...

class SubmitManyResponse(_message.Message):
    __slots__ = ("task_ids", "created")
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[int]
    created: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, task_ids: _Optional[_Iterable[int]] = ..., created: _Optional[_Iterable[bool]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    def __init__(self, task_id: _Optional[int] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("attempt", "worker_id", "started_ms", "ended_ms", "outcome", "error")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    worker_id: str
    started_ms: int
    ended_ms: int
    outcome: str
    error: str
    def __init__(self, attempt: _Optional[int] = ..., worker_id: _Optional[str] = ..., started_ms: _Optional[int] = ..., ended_ms: _Optional[int] = ..., outcome: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "task_type", "state", "priority", "payload", "result", "last_error", "attempts", "max_retries", "timeout_ms", "run_at_ms", "created_ms", "updated_ms", "finished_ms", "idempotency_key", "worker_id", "lease_deadline_ms", "cancel_requested", "history")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    task_type: str
    state: str
    priority: int
    payload: bytes
    result: bytes
    last_error: str
    attempts: int
    max_retries: int
    timeout_ms: int
    run_at_ms: int
    created_ms: int
    updated_ms: int
    finished_ms: int
    idempotency_key: str
    worker_id: str
    lease_deadline_ms: int
    cancel_requested: bool
    history: _containers.RepeatedCompositeFieldContainer[Attempt]
    def __init__(self, task_id: _Optional[int] = ..., task_type: _Optional[str] = ..., state: _Optional[str] = ..., priority: _Optional[int] = ..., payload: _Optional[bytes] = ..., result: _Optional[bytes] = ..., last_error: _Optional[str] = ..., attempts: _Optional[int] = ..., max_retries: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., run_at_ms: _Optional[int] = ..., created_ms: _Optional[int] = ..., updated_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., worker_id: _Optional[str] = ..., lease_deadline_ms: _Optional[int] = ..., cancel_requested: _Optional[bool] = ..., history: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("state", "task_type", "limit", "cursor")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    state: str
    task_type: str
    limit: int
    cursor: bytes
    def __init__(self, state: _Optional[str] = ..., task_type: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[bytes] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_cursor")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_cursor: bytes
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_cursor: _Optional[bytes] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    def __init__(self, task_id: _Optional[int] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    def __init__(self, state: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StateCounts(_message.Message):
    __slots__ = ("by_state",)
    class ByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BY_STATE_FIELD_NUMBER: _ClassVar[int]
    by_state: _containers.ScalarMap[str, int]
    def __init__(self, by_state: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("by_state", "by_type", "pending_by_tier", "queue_depth", "max_pending", "workers", "totals", "commits", "committed_ops", "uptime_s", "storage_error")
    class ByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StateCounts
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StateCounts, _Mapping]] = ...) -> None: ...
    class PendingByTierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TotalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BY_STATE_FIELD_NUMBER: _ClassVar[int]
    BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    PENDING_BY_TIER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_PENDING_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_OPS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    STORAGE_ERROR_FIELD_NUMBER: _ClassVar[int]
    by_state: _containers.ScalarMap[str, int]
    by_type: _containers.MessageMap[str, StateCounts]
    pending_by_tier: _containers.ScalarMap[str, int]
    queue_depth: int
    max_pending: int
    workers: int
    totals: _containers.ScalarMap[str, int]
    commits: int
    committed_ops: int
    uptime_s: float
    storage_error: str
    def __init__(self, by_state: _Optional[_Mapping[str, int]] = ..., by_type: _Optional[_Mapping[str, StateCounts]] = ..., pending_by_tier: _Optional[_Mapping[str, int]] = ..., queue_depth: _Optional[int] = ..., max_pending: _Optional[int] = ..., workers: _Optional[int] = ..., totals: _Optional[_Mapping[str, int]] = ..., commits: _Optional[int] = ..., committed_ops: _Optional[int] = ..., uptime_s: _Optional[float] = ..., storage_error: _Optional[str] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Lease(_message.Message):
    __slots__ = ("task_id", "task_type", "lease_id", "attempt", "deadline_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    task_type: str
    lease_id: int
    attempt: int
    deadline_ms: int
    def __init__(self, task_id: _Optional[int] = ..., task_type: _Optional[str] = ..., lease_id: _Optional[int] = ..., attempt: _Optional[int] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("worker_id", "hostname", "pid", "concurrency", "task_types", "joined_ms", "heartbeat_age_s", "tasks")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    JOINED_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AGE_S_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    hostname: str
    pid: int
    concurrency: int
    task_types: _containers.RepeatedScalarFieldContainer[str]
    joined_ms: int
    heartbeat_age_s: float
    tasks: _containers.RepeatedCompositeFieldContainer[Lease]
    def __init__(self, worker_id: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ..., concurrency: _Optional[int] = ..., task_types: _Optional[_Iterable[str]] = ..., joined_ms: _Optional[int] = ..., heartbeat_age_s: _Optional[float] = ..., tasks: _Optional[_Iterable[_Union[Lease, _Mapping]]] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("task_type", "limit", "cursor")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    limit: int
    cursor: bytes
    def __init__(self, task_type: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[bytes] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("tasks", "next_cursor")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_cursor: bytes
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_cursor: _Optional[bytes] = ...) -> None: ...

class RequeueDeadLetterRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    def __init__(self, task_id: _Optional[int] = ...) -> None: ...

class RequeueDeadLettersRequest(_message.Message):
    __slots__ = ("task_type", "limit")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    limit: int
    def __init__(self, task_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RequeueResponse(_message.Message):
    __slots__ = ("requeued",)
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    requeued: int
    def __init__(self, requeued: _Optional[int] = ...) -> None: ...

class PurgeDeadLettersRequest(_message.Message):
    __slots__ = ("older_than_ms", "task_type", "limit")
    OLDER_THAN_MS_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    older_than_ms: int
    task_type: str
    limit: int
    def __init__(self, older_than_ms: _Optional[int] = ..., task_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class PurgeDeadLettersResponse(_message.Message):
    __slots__ = ("purged",)
    PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    def __init__(self, purged: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("kinds", "task_types")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    task_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[str]] = ..., task_types: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "at_ms", "task_id", "task_type", "priority", "attempt", "worker_id", "run_s", "since_submit_s", "error", "retry_in_s", "host", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_S_FIELD_NUMBER: _ClassVar[int]
    SINCE_SUBMIT_S_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_IN_S_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    at_ms: int
    task_id: int
    task_type: str
    priority: int
    attempt: int
    worker_id: str
    run_s: float
    since_submit_s: float
    error: str
    retry_in_s: float
    host: str
    extra: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[str] = ..., at_ms: _Optional[int] = ..., task_id: _Optional[int] = ..., task_type: _Optional[str] = ..., priority: _Optional[int] = ..., attempt: _Optional[int] = ..., worker_id: _Optional[str] = ..., run_s: _Optional[float] = ..., since_submit_s: _Optional[float] = ..., error: _Optional[str] = ..., retry_in_s: _Optional[float] = ..., host: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ...) -> None: ...
