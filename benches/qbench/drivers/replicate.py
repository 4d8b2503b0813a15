"""Fill Redis with many copies of one message that a peer's own API wrote.

Enqueueing 1,000,000 tasks one by one through Celery's API takes over ten
minutes here, so the fills of the drain and memory workloads enqueue ONE
message through the peer's API into an empty Redis database, read back every
key it wrote, and write N-1 copies of exactly those structures, with fresh
ids, in pipelines. Redis then holds what N calls of the API would have left
(byte for byte, up to ids and timestamps), and the peer's workers run them as
usual (the drain workload does exactly that).

A key, list element, hash field, set or sorted-set member belongs to the
message when it contains one of the message's ids (the ``seeds``); in a copy,
every UUID in it (including ids the API made up on the side, such as Celery's
delivery tag) is replaced by a fresh one, the same one wherever it recurs.
Everything else (Celery's binding set, Dramatiq's heartbeats) is global: it
was written once and is left alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis

UUID = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
)
CHUNK = 1_000
"""Copies written per pipeline."""


@dataclass(frozen=True)
class Part:
    """A byte string with holes where its UUIDs were, as a ``%`` format."""

    fmt: bytes
    holes: tuple[int, ...] = ()

    @classmethod
    def of(cls, value: bytes, ids: dict[bytes, int]) -> Part:
        """Cut ``value``; every UUID gets (or reuses) an index in ``ids``."""
        pieces: list[bytes] = []
        holes: list[int] = []
        last = 0
        for match in UUID.finditer(value):
            pieces.append(value[last : match.start()].replace(b"%", b"%%"))
            holes.append(ids.setdefault(match.group(), len(ids)))
            last = match.end()
        pieces.append(value[last:].replace(b"%", b"%%"))
        return cls(b"%s".join(pieces), tuple(holes)) if holes else cls(value)

    def render(self, new_ids: list[bytes]) -> bytes:
        """The value with its ids replaced by ``new_ids``."""
        if not self.holes:
            return self.fmt
        return self.fmt % tuple(new_ids[hole] for hole in self.holes)


@dataclass
class Template:
    """The per-message commands of one enqueued message, ready to replay."""

    commands: list[tuple[bytes, tuple[Part, ...]]] = field(default_factory=list)
    ids: dict[bytes, int] = field(default_factory=dict)

    def add(self, command: bytes, *args: bytes) -> None:
        """Record a command whose arguments may carry ids."""
        self.commands.append((command, tuple(Part.of(arg, self.ids) for arg in args)))

    def add_literal(self, command: bytes, key: bytes, *args: bytes) -> None:
        """Record a command whose arguments after the key are copied as they are."""
        parts = (Part.of(key, self.ids), *(Part(arg) for arg in args))
        self.commands.append((command, parts))

    def fresh_ids(self) -> list[bytes]:
        """New ids, each in the format of the one it replaces."""
        return [
            str(uuid.uuid4()).encode() if len(old) == 36 else uuid.uuid4().hex.encode()
            for old in self.ids
        ]


def capture(client: redis.Redis, seeds: list[str]) -> Template:
    """Read back what one enqueue wrote; keep what belongs to the message."""
    marks = [seed.encode() for seed in seeds]
    template = Template()

    def owned(value: bytes) -> bool:
        return any(mark in value for mark in marks)

    for key in client.scan_iter(count=1000):
        if owned(key) and not _holds_uuid(client, key):
            # The id is in the key name only: copy the value as Redis stores
            # it, which is much faster than re-sending every field.
            template.add_literal(b"RESTORE", key, b"0", client.dump(key))
        else:
            _capture_entries(client, key, owned(key), owned, template)
    if not template.commands:
        raise RuntimeError(f"no key or entry holds the message ids {seeds}")
    return template


Entry = tuple[bytes, tuple[bytes, ...]]
"""A command that writes one entry of a key, and its arguments after the key."""


def _entries(client: redis.Redis, key: bytes) -> list[Entry]:
    kind = client.type(key)
    if kind == b"list":
        return [(b"RPUSH", (item,)) for item in client.lrange(key, 0, -1)]
    if kind == b"hash":
        return [(b"HSET", pair) for pair in client.hgetall(key).items()]
    if kind == b"set":
        return [(b"SADD", (member,)) for member in client.smembers(key)]
    if kind == b"zset":
        return [
            (b"ZADD", (repr(score).encode(), member))
            for member, score in client.zrange(key, 0, -1, withscores=True)
        ]
    if kind == b"string":
        return [(b"SET", (client.get(key),))]
    raise RuntimeError(f"cannot copy key {key!r} of type {kind!r}")


def _holds_uuid(client: redis.Redis, key: bytes) -> bool:
    return any(UUID.search(arg) for _, args in _entries(client, key) for arg in args)


def _capture_entries(
    client: redis.Redis,
    key: bytes,
    whole: bool,
    owned: Callable[[bytes], bool],
    template: Template,
) -> None:
    for command, args in _entries(client, key):
        if whole or any(owned(arg) for arg in args):
            template.add(command, key, *args)


def replay(client: redis.Redis, template: Template, copies: int) -> None:
    """Write ``copies`` copies of the template, ``CHUNK`` per pipeline.

    Within a chunk, the same command on the same key is sent once with all
    its arguments (one variadic RPUSH or HSET instead of a thousand).
    """
    for start in range(0, copies, CHUNK):
        merged: dict[tuple[bytes, bytes], list[bytes]] = {}
        for _ in range(min(CHUNK, copies - start)):
            for command, key, rest in _rendered(template):
                merged.setdefault((command, key), []).extend(rest)
        pipe = client.pipeline(transaction=False)
        for (command, key), args in merged.items():
            pipe.execute_command(command, key, *args)
        pipe.execute()


def _rendered(template: Template) -> Iterator[tuple[bytes, bytes, list[bytes]]]:
    new_ids = template.fresh_ids()
    for command, parts in template.commands:
        key, *rest = (part.render(new_ids) for part in parts)
        yield command, key, rest
