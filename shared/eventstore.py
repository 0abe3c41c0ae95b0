"""The event store on MongoDB: each service its own database and `events` collection.

- a unique index on (stream_id, stream_version) is the optimistic-concurrency guard;
- the events of one command (one or several streams) are appended in one transaction,
  together with any extra writes the command needs (e.g. a slot claim);
- a gap-free `position` from a counter gives "read all in order";
- the appends of one process waiting for their turn on a service's store go together in one
  transaction, each checked, failing and answered as if alone (`_AppendLock.together`);
- the events collection is also the outbox. Because positions commit in order (the counter
  is written in every append transaction, so concurrent appends serialise on it), the outbox
  state is one checkpoint: events up to `outbox.published_through` are published (the broker
  acknowledged them), later ones are pending. One write per relay batch instead of one per
  event: on the local store that is the difference between ~700 and several thousand
  events/s. `outbox_state()` answers "published / pending" per event for dashboards.
"""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import pymongo
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from . import chime
from .crypto import FieldCipher
from .events import (
    Actor,
    Event,
    EventRegistry,
    NewEvent,
    new_id,
    utcnow,
)
from .events import (
    registry as default_registry,
)
from .mongo import in_transaction

log = logging.getLogger(__name__)
PENDING, PUBLISHED = "pending", "published"
OUTBOX_ID = "relay"
ANY_VERSION = None


# One lock per database and host: every append writes the position counter, so two appends
# in flight at once can only conflict on it, abort, back off and try again (pymongo's
# with_transaction), each time redoing the whole command. Under 8 booking threads those
# retries made the p99: 0.9-1.5 s with two gunicorn workers, where one worker of 8 threads,
# whose appends take turns, gave 126 ms (BENCH_SECTIONS=booking, issue 14). So appends take
# turns in the process (a thread lock) and between the processes of one host (an flock on a
# file per database in the temporary folder: a service's gunicorn workers, and on `make up`
# its relay and loops). Appends from other hosts (another pod) still meet on the counter
# and retry, as every append did before. The appends of a process that wait for the turn
# go together when it comes, in one transaction (`_AppendLock.together`).
def _locks_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"rapport-appends-{os.getuid()}"


def forget_append_locks(database_prefix: str) -> None:
    """Remove the lock files of databases named `database_prefix...`: for tests and
    benchmarks dropping their own databases, once nothing appends to them any more."""
    for path in _locks_folder().glob(f"{database_prefix}*.lock"):
        path.unlink(missing_ok=True)


class _AppendLock:
    def __init__(self, database: str):
        self._threads = threading.Lock()
        self.path = _locks_folder() / f"{database}.lock"
        self._fd: int | None = None
        self._pid: int | None = None  # an inherited descriptor would share the parent's lock
        self._ready = threading.Condition()  # guards the waiting appends and the leader
        self._waiting: list[_Turn] = []
        self._leading = False

    def _file(self) -> int | None:
        if self._fd is None or self._pid != os.getpid():
            try:
                self.path.parent.mkdir(mode=0o700, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as err:  # no writable temporary folder: turns in the process only
                log.warning("append lock %s unavailable (%s)", self.path, err)
                self._fd = None
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def together(self, turn: _Turn, run: Callable[[list[_Turn]], None]) -> None:
        """Wait for `turn` to be appended, leading the appends that wait with it when no
        other thread does: the leader takes the lock once for everything waiting then
        (`_take`) and `run`s it as one transaction. Appends that take turns one by one go
        no faster than one transaction of three round trips after another; under load that
        was about fifteen appends a second for a service, whatever the number of threads
        waiting (issue 14: the flows' bookings, the booking section's requests)."""
        with self._ready:
            self._waiting.append(turn)
            while not turn.done:
                if self._leading:
                    self._ready.wait()
                    continue
                self._leading = True
                batch = self._take(turn.mongo)
                self._ready.release()
                try:
                    with self:
                        run(batch)
                except BaseException as err:  # the lock itself failed: no turn was tried
                    for taken in batch:
                        if not taken.done:
                            taken.error = err
                finally:
                    self._ready.acquire()
                    self._leading = False
                    self._ready.notify_all()

    def _take(self, mongo: pymongo.MongoClient) -> list[_Turn]:
        """The appends waiting on the leader's client in the order they came, up to
        TURNS_TOGETHER; one naming a stream already taken waits for the next transaction,
        after the one before it (another client's wait for a leader of their own)."""
        batch: list[_Turn] = []
        streams: set[str] = set()
        for turn in list(self._waiting):
            if len(batch) >= TURNS_TOGETHER:
                break
            if turn.mongo is not mongo or streams & turn.streams:
                continue
            batch.append(turn)
            streams |= turn.streams
            self._waiting.remove(turn)
        return batch


# appends waiting together that one transaction takes at most
TURNS_TOGETHER = 32


@dataclass(eq=False)
class _Turn:
    """One `append_streams` waiting for its turn: what it appends, and how it ended."""

    prepared: list
    total: int
    meta: Metadata
    also: Callable[[ClientSession], None] | None
    mongo: pymongo.MongoClient  # a transaction's turns share its client (and its session)
    context: contextvars.Context  # the caller's (a request's `g`): `also` runs in it
    streams: frozenset[str]
    result: list[Event] | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class _TurnFailed(Exception):
    """An append of a transaction taken together failed on its own (its check, its other
    writes, its stream's version): the others are appended again without it."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(str(error))
        self.index, self.error = index, error


def _transient(err: BaseException) -> bool:
    return isinstance(err, PyMongoError) and err.has_error_label("TransientTransactionError")


_append_locks: dict[str, _AppendLock] = {}
_locks_guard = threading.Lock()


def _append_lock(database: str) -> _AppendLock:
    with _locks_guard:
        found = _append_locks.get(database)
        if found is None:
            found = _append_locks[database] = _AppendLock(database)
        return found


class ConcurrencyError(RuntimeError):
    """The stream moved on since it was read: expected version no longer current."""

    def __init__(self, stream_id: str, expected: int | None, actual: int | None = None):
        found = "it has moved on" if actual is None else f"found {actual}"
        super().__init__(f"stream {stream_id}: expected version {expected}, {found}")
        self.stream_id, self.expected, self.actual = stream_id, expected, actual


@dataclass(frozen=True)
class StreamAppend:
    stream_id: str
    expected_version: int | None  # events already in the stream; None = don't check
    events: Sequence[NewEvent]
    # these events' own metadata, where the append's is not theirs: one for all of them, or
    # one per event (several commands, each with its own cause, recorded in one transaction:
    # billing's charges of a batch)
    meta: Metadata | Sequence[Metadata] | None = None

    def metas(self, default: Metadata) -> list[Metadata]:
        """Each event's metadata, in order."""
        if self.meta is None or isinstance(self.meta, Metadata):
            return [self.meta or default] * len(self.events)
        if len(self.meta) != len(self.events):
            raise ValueError(f"{len(self.meta)} metadata for {len(self.events)} events")
        return list(self.meta)


@dataclass(frozen=True)
class Metadata:
    actor: Actor
    correlation_id: str
    causation_id: str | None = None


class EventStore:
    def __init__(
        self,
        mongo: pymongo.MongoClient,
        database: str,
        registry: EventRegistry = default_registry,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.mongo = mongo
        self.cipher = cipher  # shared.crypto.FieldCipher: seals personal fields per client
        self.db = mongo[database]
        self.events = self.db["events"]
        self.counters = self.db["counters"]
        self.registry = registry

    def ensure_indexes(self) -> None:
        self.events.create_indexes(
            [
                IndexModel(
                    [("stream_id", ASCENDING), ("stream_version", ASCENDING)],
                    unique=True,
                    name="stream_version_unique",
                ),
                IndexModel([("position", ASCENDING)], unique=True, name="position_unique"),
            ]
        )

    # -- writing ------------------------------------------------------------------------
    def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        meta: Metadata,
        *,
        also: Callable[[ClientSession], None] | None = None,
    ) -> list[Event]:
        return self.append_streams(
            [StreamAppend(stream_id, expected_version, events)], meta, also=also
        )

    def append_streams(
        self,
        appends: Sequence[StreamAppend],
        meta: Metadata,
        *,
        also: Callable[[ClientSession], None] | None = None,
    ) -> list[Event]:
        """Append the events of one command atomically. Raises ConcurrencyError if any
        stream is not at its expected version; `also(session)` runs in the same transaction."""
        streams = [a.stream_id for a in appends]
        if len(set(streams)) != len(streams):
            raise ValueError(
                f"a stream appears twice in one append: {sorted(streams)}; "
                "put its events in one StreamAppend"
            )
        for a in appends:
            a.metas(meta)  # one per event, if given per event
        prepared = [(a, [self._prepare(e) for e in a.events]) for a in appends]
        total = sum(len(evts) for _, evts in prepared)
        if total == 0:
            return []

        turn = _Turn(
            prepared, total, meta, also, self.mongo, contextvars.copy_context(), frozenset(streams)
        )
        _append_lock(self.db.name).together(turn, self._append_together)
        if turn.error is not None:
            raise turn.error
        assert turn.result is not None  # done without an error: appended
        stored = turn.result
        chime.announce([self.events.full_name])  # the relay (and any `also` watcher) wakes
        # hand back loaded (Python-valued) data, as readers would see it
        return [
            e.with_data(self.registry.deserialise(e.type, e.schema_version, e.data)[1])
            for e in stored
        ]

    def _append_together(self, turns: list[_Turn]) -> None:
        """Append `turns` in one transaction, each as if alone and in their order: one that
        fails on its own gets its error and the others go again without it (its failed
        statement aborted the transaction); a failure of the transaction itself (the store
        unreachable, the commit's result unknown) is every turn's, and none is tried again."""
        while turns:
            try:
                stored = in_transaction(self.mongo, partial(self._write, turns))
            except _TurnFailed as failed:
                turns[failed.index].error = failed.error
                turns = turns[: failed.index] + turns[failed.index + 1 :]
                continue
            except BaseException as err:
                for turn in turns:
                    turn.error = err
                return
            for turn, events in zip(turns, stored, strict=True):
                turn.result = events
            return

    def _write(self, turns: list[_Turn], session: ClientSession) -> list[list[Event]]:
        """The transaction's work: each turn's checks and other writes, one take of the
        position counter for all of them, one insert of all their events."""

        # every stream is checked and the commands' other writes made before the position
        # counter is taken: every append writes that one document, so it is held (and
        # concurrent appends from other hosts wait or conflict on it) for the shortest time
        currents = []
        for index, turn in enumerate(turns):
            try:
                currents.append([self._current(a, session) for a, _ in turn.prepared])
                if turn.also is not None:
                    turn.context.run(turn.also, session)
            except Exception as err:
                if _transient(err):  # the transaction's, retried whole (with_transaction)
                    raise
                raise _TurnFailed(index, err) from err
        recorded_at = utcnow()
        total = sum(turn.total for turn in turns)
        counter = self.counters.find_one_and_update(
            {"_id": "events"},
            {"$inc": {"seq": total}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert counter is not None  # upserted, and AFTER answers the document as written
        position = counter["seq"] - total
        docs, owners, out = [], [], []
        for index, (turn, streams_now) in enumerate(zip(turns, currents, strict=True)):
            events: list[Event] = []
            for (append, evts), current in zip(turn.prepared, streams_now, strict=True):
                metas = append.metas(turn.meta)
                for offset, (type_, version, data, sealed, occurred_at) in enumerate(evts, start=1):
                    meta = metas[offset - 1]
                    position += 1
                    event = Event(
                        event_id=new_id(),
                        type=type_,
                        schema_version=version,
                        stream_id=append.stream_id,
                        stream_version=current + offset,
                        occurred_at=occurred_at or recorded_at,
                        recorded_at=recorded_at,
                        actor=meta.actor,
                        correlation_id=meta.correlation_id,
                        causation_id=meta.causation_id,
                        data=data,
                        position=position,
                    )
                    docs.append(self._document(event, sealed))
                    owners.append(index)
                    events.append(event)
            out.append(events)
        try:
            self.events.insert_many(docs, ordered=True, session=session)
        except (DuplicateKeyError, BulkWriteError) as err:
            # insert_many reports a duplicate key as a BulkWriteError (code 11000): another
            # writer took this stream version first
            errors = (
                err.details.get("writeErrors", [])
                if isinstance(err, BulkWriteError)
                else [{"code": 11000}]
            )
            if not errors or any(e.get("code") != 11000 for e in errors):
                raise
            # the stream whose next version was taken (the first write that failed)
            at = errors[0].get("index", 0)
            index, failed = owners[at], docs[at]["stream_id"]
            expected = next(
                a.expected_version for a, _ in turns[index].prepared if a.stream_id == failed
            )
            raise _TurnFailed(index, ConcurrencyError(failed, expected)) from err
        return out

    def _current(self, append: StreamAppend, session: ClientSession) -> int:
        """The stream's version now, checked against the expected one. A stream expected at
        a version is not read: its first new event takes the next version, which the unique
        (stream_id, stream_version) index refuses if the stream has moved past the version
        expected, so the check costs no round trip. A new stream (expected 0) was the first
        case (a course appends 17 in one command); every command on a stream that exists
        read it once more inside its transaction, and a dispatcher recording eight messages
        sent read eight streams one by one (issue 14). The expected version is what a load
        of the stream found (every caller's), never more than the stream holds: events are
        never deleted, so a stream cannot be behind a version once loaded. Without one
        (None), the events go after whatever the stream holds, read now."""
        if append.expected_version is not None:
            return append.expected_version
        current = self.stream_version(append.stream_id, session=session)
        if append.expected_version is not None and current != append.expected_version:
            raise ConcurrencyError(append.stream_id, append.expected_version, current)
        return current

    def _prepare(self, event: NewEvent) -> tuple[str, int, dict, dict, datetime | None]:
        version, data = self.registry.serialise(event.type, event.data)
        sealed = self.cipher.seal(self.registry, event.type, version, data) if self.cipher else data
        return event.type, version, data, sealed, event.occurred_at

    @staticmethod
    def _document(event: Event, wire_data: dict) -> dict:
        return {
            "_id": event.event_id,
            "type": event.type,
            "schema_version": event.schema_version,
            "stream_id": event.stream_id,
            "stream_version": event.stream_version,
            "position": event.position,
            "occurred_at": event.occurred_at,
            "recorded_at": event.recorded_at,
            "actor": {"id": event.actor.id, "role": event.actor.role},
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "data": wire_data,
        }

    # -- reading ------------------------------------------------------------------------
    def stream_version(self, stream_id: str, session: ClientSession | None = None) -> int:
        last = self.events.find_one(
            {"stream_id": stream_id},
            {"stream_version": 1},
            sort=[("stream_version", -1)],
            session=session,
        )
        return last["stream_version"] if last else 0

    def load(self, stream_id: str, *, until: datetime | None = None) -> list[Event]:
        query: dict = {"stream_id": stream_id}
        if until is not None:
            query["recorded_at"] = {"$lte": until}
        cursor = self.events.find(query).sort("stream_version", ASCENDING)
        return [self.from_document(d) for d in cursor]

    def load_many(self, stream_ids: Sequence[str]) -> dict[str, list[Event]]:
        """Several streams in one query, each in version order (an empty list for a stream
        with no events): a dispatcher recording fifty notifications read them one by one,
        fifty round trips before its transaction began (issue 14)."""
        found: dict[str, list[Event]] = {sid: [] for sid in stream_ids}
        if not found:
            return found
        cursor = self.events.find({"stream_id": {"$in": list(found)}}).sort(
            [("stream_id", ASCENDING), ("stream_version", ASCENDING)]
        )
        for doc in cursor:
            found[doc["stream_id"]].append(self.from_document(doc))
        return found

    def read_all(self, from_position: int = 0, batch_size: int = 500) -> Iterator[Event]:
        """Every event of this store in commit order, from `from_position` (exclusive)."""
        last = from_position
        while True:
            docs = self._window(last, batch_size)
            if not docs:
                return
            for doc in docs:
                yield self.from_document(doc)
            last = docs[-1]["position"]

    def _window(self, last: int, size: int) -> list[dict]:
        """The events after position `last`, at most `size`, in order. Positions are gap-free,
        so this asks for the range (last, last + size]: the local store (SecantusDB) reads
        every match of an open `$gt` before it sorts and limits, which made reading the tail
        of 100k events 7 times slower than of 10k (BENCH_SECTIONS=scale make bench). An
        empty range is checked with one open query, in case a position was ever skipped."""
        docs = list(
            self.events.find({"position": {"$gt": last, "$lte": last + size}}).sort(
                "position", ASCENDING
            )
        )
        if docs:
            return docs
        following = self.events.find_one(
            {"position": {"$gt": last}}, {"position": 1}, sort=[("position", ASCENDING)]
        )
        if following is None:
            return []
        start = following["position"]
        return list(
            self.events.find({"position": {"$gte": start, "$lt": start + size}}).sort(
                "position", ASCENDING
            )
        )

    def from_document(self, doc: dict) -> Event:
        version, data = self.registry.deserialise(
            doc["type"], doc["schema_version"], doc["data"], self.cipher
        )
        return Event(
            event_id=doc["_id"],
            type=doc["type"],
            schema_version=version,
            stream_id=doc["stream_id"],
            stream_version=doc["stream_version"],
            occurred_at=doc["occurred_at"],
            recorded_at=doc["recorded_at"],
            actor=Actor(**doc["actor"]),
            correlation_id=doc["correlation_id"],
            causation_id=doc.get("causation_id"),
            data=data,
            position=doc["position"],
        )

    # -- outbox -------------------------------------------------------------------------
    def published_through(self) -> int:
        doc = self.db["outbox"].find_one({"_id": OUTBOX_ID})
        return doc["published_through"] if doc else 0

    def pending(self, limit: int = 500, after: int | None = None) -> list[dict]:
        """Unpublished events in position order: after the stored checkpoint, or after
        `after` (a relay's own record of the checkpoint it wrote)."""
        return self._window(self.published_through() if after is None else after, limit)

    def mark_published_through(self, position: int) -> None:
        """The broker acknowledged every event up to `position` (never moves back)."""
        self.db["outbox"].update_one(
            {"_id": OUTBOX_ID},
            {"$max": {"published_through": position}, "$set": {"updated_at": utcnow()}},
            upsert=True,
        )

    def outbox_state(self, event: Event | dict) -> str:
        position = event.position if isinstance(event, Event) else event.get("position")
        if position is None:  # not stored yet, so not published either
            return PENDING
        return PUBLISHED if position <= self.published_through() else PENDING

    def outbox_backlog(self) -> tuple[int, datetime | None]:
        """(pending count, recorded_at of the oldest pending event)."""
        query = {"position": {"$gt": self.published_through()}}
        count = self.events.count_documents(query)
        oldest = self.events.find_one(query, {"recorded_at": 1}, sort=[("position", ASCENDING)])
        return count, (oldest or {}).get("recorded_at")
