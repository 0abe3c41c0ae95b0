"""Projections: named read models built from events, each able to be rebuilt.

A projection owns a few collections. They live in *generations* (`diary__g1`, `diary__g2`):
readers always see the active generation while a rebuild fills the next one, then the
rebuild flips `projection_meta.active` and the live consumer follows. Each generation keeps,
in the same transaction as every projection write:
- the next offset per topic partition (`projection_offsets`), where consumers resume, with
  the recording time of the newest event read there (`progress`: how stale it is);
- the positions seen of each source service (`projection_progress`, shared.consistency):
  every event has a gap-free position in its service, so these say which events were applied
  (or parked) already, and an event delivered twice — by a redelivery or by a relay that
  published it twice — changes nothing;
- where positions cannot tell (a generation that began mid-topic, below its first batch; an
  event without a position; a redrive of a parked event, whose position was seen), the ids of
  the events applied (`projection_processed`), checked in the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import pymongo
from pymongo import IndexModel
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from . import chime, consistency
from .combine import OPS, Fresh, Write, combine, reaches_out, reads, send
from .crypto import FieldCipher
from .events import Event, EventRegistry, InvalidEventData, UnknownEventType, utcnow
from .mongo import delete_in_pieces, drop_in_pieces, in_transaction

log = logging.getLogger(__name__)


# Projection.urgent: every type the projection has a handler for (Projection.urgent_types)
HANDLED: frozenset[str] = frozenset({"<handled>"})


class Projection:
    """Subclass and set `service` (the owning service), `name`, `sources` (services whose
    topics it reads) and `collections` ({logical name: [IndexModel, ...]}). Handlers are
    methods named `on_<EventType>(self, event, view)`; types without a handler are skipped."""

    service: str = ""
    name: str = ""
    sources: tuple[str, ...] = ()
    collections: dict[str, list[IndexModel]] = {}
    # Collections beside the generations that the handlers also write (through
    # `view.database`; shared with other writers and never rebuilt, e.g. notifications'
    # message book), with their indexes. They are made before the first record is applied
    # (ProjectionStore.ensure_outside): the local store builds a new index without the writes
    # of a transaction open meanwhile, and an index made by another loop while a handler's
    # transaction was planning a risk alert hid that alert from the dispatchers for good
    # (seen in CI; bench/README.md, gaps of the local servers).
    outside: dict[str, list[IndexModel]] = {}
    # Bells this projection rings after each batch it applied, besides `projection_offsets`
    # (shared.chime; a name, not a collection): a loop that acts only on what this one
    # projection writes (notifications' urgent lane on the risk alerts) rests on its own
    # bell instead of waking for every batch of every projection of the service.
    rings: tuple[str, ...] = ()
    # True: the handlers' writes of a batch wait and go to the store as one ordered bulk_write
    # per collection (any read first sends what waits, so a handler still reads its writes).
    # For projections whose handlers write only through `view[...]` and do not use the
    # results of update_one & co (they get None).
    batched: bool = False
    # Seconds a runner waits after applying a batch before it looks for the next one (0: at
    # once). The first record after a quiet spell is applied as soon as it comes; under load,
    # what arrived meanwhile is applied together. For projections nobody waits on within a
    # second (billing's diary, the questionnaire plans, notifications' planner): each batch is
    # a transaction, and the local store runs transactional statements one at a time, so their
    # many small batches queued the ones a therapist waits on (issue 14; bench/README.md).
    linger: float = 0.0
    # Event types that end a linger at once: the runner then polls while it lingers and holds
    # what it read, and applies at once the partitions an urgent event came on, with what
    # they held; the other partitions' records wait out their linger (the urgent lane,
    # shared.consumer). For a projection that has both kinds: the measures board's bookings
    # and attendances can wait, a completed questionnaire cannot.
    # HANDLED: the types this projection has a handler for (`urgent_types`), for one that
    # reads a busy topic for a few of its types (scheduling's therapists, records' course
    # ends): the events it ignores were each few a transaction of offsets alone.
    urgent: frozenset[str] = frozenset()

    def urgent_types(self) -> frozenset[str]:
        """`urgent`, with HANDLED read as the types of the `on_<EventType>` handlers."""
        if self.urgent is HANDLED:
            return self.handled_types()
        return self.urgent

    def handled_types(self) -> frozenset[str]:
        """The types of its `on_<EventType>` handlers."""
        return frozenset(n[3:] for n in dir(type(self)) if n.startswith("on_"))

    def decoded_types(self) -> frozenset[str] | None:
        """The event types whose data this projection reads: those of its `on_<EventType>`
        handlers, or every type (None) for one with a `handle` of its own. The others' data
        is not decoded (Registry.from_message)."""
        return None if type(self).handle is not Projection.handle else self.handled_types()

    def prepare(self, events: Sequence[Event], view: View) -> None:
        """Called once per batch, before its `events` (those to be handled, in order) are
        handled, in the same transaction: a projection that reads the same kind of document
        for many events of a batch reads them all here in one query (`View.memo`), instead
        of one round trip per event. Does nothing unless overridden."""

    def handle(self, event: Event, view: View) -> None:
        handler = getattr(self, f"on_{event.type}", None)
        if handler is not None:
            handler(event, view)


class SessionCollection:
    """A collection bound to the current transaction: every call gets `session=`."""

    def __init__(self, collection: Collection, session: ClientSession):
        self._collection, self._session = collection, session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def bound(*args, **kwargs):
            kwargs.setdefault("session", self._session)
            return attr(*args, **kwargs)

        return bound


class WriteBuffer:
    """The writes of one batch, combined (shared.combine: each document's updates folded
    into one where that is certain) and sent together (shared.combine.send: one bulkWrite
    command, or one ordered bulk_write per run of writes to one collection): a consumer
    batch of 500 events is a few round trips, not 500, and a rebuild writes each document
    about once per batch, not once per event (issue 14)."""

    def __init__(
        self,
        session: ClientSession,
        in_order: frozenset[str] = frozenset(),
        fresh: Fresh | None = None,
        ready: Callable[[], None] = lambda: None,
    ):
        self.session, self.in_order, self.fresh = session, in_order, fresh
        self.ready = ready  # waited for before anything goes to the store (`View`)
        self.pending: list[Write] = []

    def add(self, write: Write) -> None:
        self.pending.append(write)

    def take(self, collection: str | None = None) -> list[Write]:
        """The writes waiting, combined (and settled, in a rebuild), as they go to the store;
        the buffer is then empty. With `collection` (a full name), only the writes to that
        collection, in their order; the others keep waiting."""
        if collection is None:
            taken, self.pending = self.pending, []
        else:
            taken = [w for w in self.pending if w.collection.full_name == collection]
            self.pending = [w for w in self.pending if w.collection.full_name != collection]
        pending = combine(taken, self.in_order)
        if self.fresh is not None:  # a rebuild: what makes a document goes as its insert
            pending = self.fresh.settle_all(pending, self.in_order)
        return pending

    def flush(self, collection: str | None = None) -> None:
        """Send the writes waiting (to `collection` only, when given)."""
        self.ready()
        send(self.take(collection), self.session, may_join=self.fresh is None)


class BufferedCollection(SessionCollection):
    """A view collection whose writes wait in the batch's WriteBuffer; every other call
    (a read, find_one_and_update) first sends what waits for its collection, so it sees the
    batch so far. The writes to other collections wait on: a read of the courses after a
    score's writes to the responses was a round trip of its own, in the transaction that
    stands between a completed questionnaire and the dashboard (issue 14). An aggregation
    that reads or writes another collection sends everything first."""

    def __init__(self, collection: Collection, buffer: WriteBuffer):
        super().__init__(collection, buffer.session)
        self._buffer = buffer

    def __getattr__(self, name: str) -> Any:
        if name in OPS:
            collection, add = self._collection, self._buffer.add

            def write(*args: Any, **kwargs: Any) -> None:
                add(Write.of(collection, name, args, kwargs))

            self.__dict__[name] = write  # a View keeps its collections: found at once next time
            return write
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def bound(*args, **kwargs):
            fresh = self._buffer.fresh
            if fresh is not None and not reads(name, args, kwargs):
                fresh.untrack(self._collection.full_name)  # it may write: past the tracking
            alone = not (name == "aggregate" and reaches_out(args, kwargs))
            self._buffer.flush(self._collection.full_name if alone else None)
            kwargs.setdefault("session", self._session)
            return attr(*args, **kwargs)

        return bound


class View:
    """What a handler writes through: `view["diary"]` is that collection's generation.

    `ready` is waited for before the batch's first statement to the store (a read, a write
    not buffered, the session handed out): a rebuild's batch runs its handlers while the
    batch before it is still being written (`ProjectionStore.ahead`), and its transaction
    must begin after that one committed, or it would read from a snapshot without it."""

    def __init__(
        self,
        store: ProjectionStore,
        generation: int,
        session: ClientSession,
        ready: Callable[[], None] = lambda: None,
    ):
        self._store, self._generation, self._session = store, generation, session
        self._ready = ready
        self.buffer = (
            WriteBuffer(session, store.kept_in_order(generation), store.fresh(generation), ready)
            if store.projection.batched
            else None
        )
        self._afterwards: dict[Any, Callable[[], None]] = {}
        self._collections: dict[str, SessionCollection] = {}
        self._together: dict[str, dict[Any, None]] = {}
        # what a handler read in this batch's transaction and may read again for a later
        # event of the batch (the planner reads a client's contact for each of their
        # bookings). A transaction sees no one else's writes, so an entry stays true until
        # the projection itself writes what it holds: the handler that does drops it. A
        # retried transaction starts with a new View, so with nothing remembered.
        self.memo: dict[Any, Any] = {}

    @property
    def session(self) -> ClientSession:
        """The batch's transaction, for what a handler sends itself (after `ready`)."""
        self._ready()
        return self._session

    def recall(self, key: Any, read: Callable[[], Any]) -> Any:
        """What `read()` answered for `key` earlier in this batch (`memo`), else read now."""
        if key not in self.memo:
            self.memo[key] = read()
        return self.memo[key]

    def once(self, key: Any, work: Callable[[], None]) -> None:
        """Do `work` once for `key` after the batch's last event, in the same transaction:
        what a handler would redo after every event of the batch (measures recomputing a
        course's outcome after each booking and each score) is done once, on the batch's
        final state. The first registration of a key keeps its place in the order."""
        self._afterwards.setdefault(key, work)

    def together(self, name: str, key: Any, work: Callable[[list], None]) -> None:
        """Gather `key` under `name`; after the batch's last event `work(keys)` runs once with
        every key gathered (in first-seen order), in the same transaction, where `once` would
        run per key: what a handler reads for each key of a batch is then one query for all
        (measures' board reads every course it recomputes with one find). Work that gathers
        more under a name whose work has run makes it run again for those."""
        keys = self._together.get(name)
        if keys is None:
            keys = self._together[name] = {}
            self._afterwards[("together", name)] = lambda: work(list(self._together.pop(name)))
        keys.setdefault(key, None)

    def finish(self) -> None:
        """The batch's handlers are done: the `once` work, then the buffered writes."""
        send(self.finish_writes(), self.session)

    def finish_writes(self) -> list[Write]:
        """The `once` work, then the buffered writes, not sent: the batch sends them with
        its own (offsets, positions) in one command (`ProjectionStore._apply`)."""
        while self._afterwards:
            key = next(iter(self._afterwards))
            self._afterwards.pop(key)()
        return self.buffer.take() if self.buffer is not None else []

    def __getitem__(self, logical: str) -> SessionCollection:
        found = self._collections.get(logical)
        if found is None:  # made once a batch: a handler asks for one with every write
            collection = self._store.physical(logical, self._generation)
            found = self._collections[logical] = (
                BufferedCollection(collection, self.buffer)
                if self.buffer is not None
                else SessionCollection(collection, self.session)
            )
        return found

    def flush(self) -> None:
        if self.buffer is not None:
            self.buffer.flush()

    @property
    def database(self) -> Database:
        """The projection's database, for a handler writing a collection of its service's
        that is not one of its own generations (notifications' message book)."""
        return self._store.db

    @property
    def cipher(self) -> FieldCipher | None:
        """The store's cipher, for a handler that keeps a personal value outside the events
        (it seals it: `cipher.seal_value`)."""
        return self._store.cipher


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka record a projection needs (also built from a ConsumerRecord)."""

    topic: str
    partition: int
    offset: int
    value: bytes


def generation_progress(offsets: Collection, key: str) -> dict:
    """{last_event_recorded_at, last_applied_at} of projection generation `key`: the
    recording time of the newest event it has read, and when it last read one, from its
    offsets ({} before its first event). How stale a projection is (shared.metrics)."""
    docs = list(
        offsets.find(
            {"_id": {"$regex": f"^{re.escape(key)}:"}},
            {"last_event_recorded_at": 1, "updated_at": 1},
        )
    )
    recorded = [d["last_event_recorded_at"] for d in docs if d.get("last_event_recorded_at")]
    if not recorded:
        return {}
    return {
        "last_event_recorded_at": max(recorded),
        "last_applied_at": max(d["updated_at"] for d in docs),
    }


class Pinned:
    """Readers of one generation of a projection (ProjectionStore.pinned)."""

    def __init__(self, store: ProjectionStore, generation: int):
        self.store, self.generation = store, generation

    def reader(self, logical: str) -> Collection:
        consistency.wait_for(self.store, self.generation)
        return self.store.physical(logical, self.generation)


class GenerationRetired(Exception):
    """A batch was about to write a generation that is neither active nor the one kept
    before it: a rebuild swapped in another and dropped this one (twice in a row, faster
    than the live consumer looks for a swap). Nothing of the batch is written; the consumer
    follows the active generation (ProjectionRunner.step)."""

    def __init__(self, name: str, generation: int, active: int):
        super().__init__(f"{name}: generation {generation} was retired (active: {active})")
        self.generation, self.active = generation, active


class ProjectionStore:
    def __init__(
        self,
        mongo: pymongo.MongoClient,
        database: str,
        projection: Projection,
        registry: EventRegistry,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.mongo, self.db = mongo, mongo[database]
        self.cipher = cipher
        self.projection, self.registry = projection, registry
        self._decoded = projection.decoded_types()  # the types whose data it reads
        self.meta = self.db["projection_meta"]
        self.offsets = self.db["projection_offsets"]
        self.processed = self.db["projection_processed"]
        self.dead_letters = self.db["dead_letters"]
        # the progress documents the last transaction wrote (shared.consistency.note_seen)
        self._noted = consistency.Noted()
        # generations this process began empty, alone writes and keeps the progress of in
        # memory (a rebuild: `keep_progress`), with the documents its writes made
        self._kept: dict[int, Fresh] = {}
        # pymongo's Collection objects of the generations, made once: `view[...]` asks for one
        # for every write and read a handler makes, and making one is about 3 us (a rebuild
        # of 3,000 events made 3,000; issue 14). They hold no state of the server's.
        self._physical: dict[tuple[str, int], Collection] = {}

    @property
    def name(self) -> str:
        return self.projection.name

    # -- generations --------------------------------------------------------------------
    def active_generation(self) -> int:
        doc = self.meta.find_one({"_id": self.name}, {"active": 1})
        if doc is None:
            self.meta.update_one(
                {"_id": self.name},
                {"$setOnInsert": {"active": 1, "created_at": utcnow()}},
                upsert=True,
            )
            self.ensure_generation(1)
            return 1
        return doc["active"]

    def physical(self, logical: str, generation: int) -> Collection:
        found = self._physical.get((logical, generation))
        if found is None:
            if logical not in self.projection.collections:
                raise KeyError(f"projection {self.name} has no collection {logical!r}")
            found = self._physical[(logical, generation)] = self.db[f"{logical}__g{generation}"]
        return found

    def reader(self, logical: str) -> Collection:
        """The collection API handlers query: the active generation, once it has reached
        the positions the request asked for (shared.consistency; nothing without them).
        Within a request the generation is read once: a page's access check and its reads
        of several collections of one projection asked for it before each."""
        return Pinned(self, consistency.pinned_generation(self)).reader(logical)

    def pinned(self) -> Pinned:
        """The active generation read once, for the several reads of one piece of work (a
        message on its way reads the client, the session, the therapist): one round trip
        instead of one before each read, and all of them from the same generation."""
        return Pinned(self, self.active_generation())

    def kept_in_order(self, generation: int) -> frozenset[str]:
        """The generation's collections with a unique index besides _id: their buffered
        writes keep their order (shared.combine)."""
        return frozenset(
            self.physical(logical, generation).full_name
            for logical, indexes in self.projection.collections.items()
            if any(index.document.get("unique") for index in indexes)
        )

    def ensure_outside(self) -> None:
        """The indexes of the collections the handlers write beside the generations
        (Projection.outside), made before anything is applied."""
        for name, indexes in self.projection.outside.items():
            if indexes:
                self.db[name].create_indexes(list(indexes))

    def ensure_generation(self, generation: int) -> None:
        for logical, indexes in self.projection.collections.items():
            if indexes:
                self.physical(logical, generation).create_indexes(list(indexes))

    def drop_generation(self, generation: int) -> None:
        """Drop a generation, its positions first: a live consumer still writing it (it had
        not followed two swaps) then finds its positions gone or moved, in its next batch
        or in the one it has in hand (its conditional write of them conflicts or matches
        nothing), reads that the generation was retired and writes nothing (`_apply`).
        Dropped the other way round, such a batch made the dropped collections again and
        left them behind (issue 14, the bench's busy section)."""
        self._kept.pop(generation, None)
        consistency.drop_progress(self, self._key(generation))
        prefix = f"^{self._key(generation)}:"
        for collection in (self.offsets, self.processed):
            delete_in_pieces(collection, {"_id": {"$regex": prefix}})
        for logical in self.projection.collections:
            drop_in_pieces(self.physical(logical, generation))
        self.meta.delete_one({"_id": self._key(generation)})

    def _still_written(self, generation: int, session: ClientSession) -> None:
        """Raise GenerationRetired unless `generation` is the active one, the one kept
        before it (which a consumer that has not yet followed a swap still writes, harmless:
        it is dropped only by the next rebuild, after its positions) or the one a rebuild is
        building (which it writes as any consumer once it has written its positions)."""
        doc = self.meta.find_one(
            {"_id": self.name}, {"active": 1, "previous": 1, "building": 1}, session=session
        ) or {"active": 1}
        if generation not in (doc.get("active"), doc.get("previous"), doc.get("building")):
            raise GenerationRetired(self.name, generation, doc.get("active", 1))

    def progress(self, generation: int) -> dict:
        """{last_event_recorded_at, last_applied_at} of a generation ({} before its first
        event): `generation_progress`."""
        return generation_progress(self.offsets, self._key(generation))

    def activate(self, generation: int, *, keep: bool = True) -> int:
        """Swap the readers (and the live consumer) to `generation`; return the old one,
        kept as the previous generation unless `keep` is false (it is dropped at once:
        a consumer still writing it is then told it was retired, `_still_written`)."""
        old = self.active_generation()
        self.meta.update_one(
            {"_id": self.name},
            {
                "$set": {
                    "active": generation,
                    "previous": old if keep else None,
                    "activated_at": utcnow(),
                    "building": None,
                }
            },
        )
        return old

    def keep_progress(self, generation: int) -> None:
        """A rebuild, the only writer of a generation that nothing reads yet, keeps the
        positions it has seen in this process instead of rewriting them with every batch:
        while one partition runs ahead of the others they are thousands of ranges, and
        writing them was a third of a 1M-event rebuild's time (py-spy, bench scale,
        session 9). A rebuild that stops never resumes (its generation is dropped), so
        nothing reads them before `write_progress`, which must come before `activate`.

        The generation is empty (made just now) and the rebuild its only writer, so it also
        keeps which documents its writes made (shared.combine.Fresh): a document's first
        write, an upsert, goes to the store as the insert of what it makes."""
        self._kept[generation] = Fresh()

    def write_progress(self, generation: int) -> None:
        """Write the positions kept since `keep_progress`, and write them with every batch
        from now on (and write upserts as upserts: others may write it from now on)."""
        consistency.write_known(self, self._key(generation))
        self._kept.pop(generation, None)

    def ahead(self, generation: int) -> Ahead:
        """A rebuild's batches into `generation` (kept since `keep_progress`), each decided
        while the one before it is written (`Ahead`)."""
        return Ahead(self, generation)

    def fresh(self, generation: int) -> Fresh | None:
        """The documents made so far in a generation kept since `keep_progress`."""
        return self._kept.get(generation)

    def _key(self, generation: int) -> str:
        return f"{self.name}:g{generation}"

    # -- offsets ------------------------------------------------------------------------
    def stored_offsets(self, generation: int) -> dict[tuple[str, int], int]:
        """{(topic, partition): next offset to read} for a generation."""
        return {tp: offset for tp, (offset, _) in self.stored_positions(generation).items()}

    def stored_positions(self, generation: int) -> dict[tuple[str, int], tuple[int, str | None]]:
        """{(topic, partition): (next offset to read, id of the event just before it)}."""
        prefix = f"^{self._key(generation)}:"
        return {
            (d["topic"], d["partition"]): (d["next_offset"], d.get("last_event_id"))
            for d in self.offsets.find({"_id": {"$regex": prefix}})
        }

    # -- applying records ------------------------------------------------------------------
    def apply(
        self, records: Sequence[Record], generation: int, *, track_offsets: bool = True
    ) -> int:
        """Apply records in one transaction with their offsets and processed ids. A handler
        bug or an unknown event type parks that record in `dead_letters` (loudly) and the
        rest still apply; store errors propagate for the caller to retry."""
        if not records:
            return 0
        try:
            applied = in_transaction(
                self.mongo, lambda s: self._apply(records, generation, s, track_offsets)
            )
            consistency.remember(self._noted)
            if applied:  # loops acting on what projections wrote wake (shared.wakeup)
                chime.announce(self._rung())
            return applied
        except (PyMongoError, GenerationRetired):
            raise
        except Exception:
            log.exception("projection %s: batch failed; applying one by one", self.name)
        applied = 0
        for record in records:
            try:
                one = partial(self._apply, [record], generation, track_offsets=track_offsets)
                applied += in_transaction(self.mongo, one)
                consistency.remember(self._noted)
            except (PyMongoError, GenerationRetired):
                raise
            except Exception as err:  # a handler bug: park it, keep the projection moving
                log.error(
                    "projection %s: event at %s/%d@%d failed: %r",
                    self.name,
                    record.topic,
                    record.partition,
                    record.offset,
                    err,
                )
                park = partial(self._park, record, generation, err, track_offsets=track_offsets)
                in_transaction(self.mongo, park)
                consistency.remember(self._noted)
        if applied:
            chime.announce(self._rung())
        return applied

    def _rung(self) -> list[str]:
        return [self.offsets.full_name, *(self.bell(name) for name in self.projection.rings)]

    def bell(self, name: str) -> str:
        """The full name a projection's own bell rings under (`Projection.rings`)."""
        return f"{self.db.name}.{name}"

    def _apply(
        self,
        records: Sequence[Record],
        generation: int,
        session: ClientSession,
        track_offsets: bool = True,
    ) -> int:
        count, writes, checks = self._decide(records, generation, session, track_offsets)
        # a rebuild's (a generation kept in this process) go one bulk per collection
        _send_checked(writes, checks, session, may_join=generation not in self._kept)
        return count

    def _decide(
        self,
        records: Sequence[Record],
        generation: int,
        session: ClientSession,
        track_offsets: bool = True,
        ready: Callable[[], None] = lambda: None,
    ) -> tuple[int, list[Write], dict[int, tuple[str, str]]]:
        """A batch's handlers, run: the number applied, the writes to send in `session` (the
        handlers' last, the ids kept, the offsets, the positions seen) and which of them are
        on a condition (the index of each, with its positions document). `ready` is waited
        for before the first statement this sends itself (`View`)."""
        view = View(self, generation, session, ready)
        key = self._key(generation)
        next_offsets: dict[tuple[str, int], int] = {}
        last_ids: dict[tuple[str, int], str | None] = {}
        recorded: dict[tuple[str, int], datetime] = {}  # the newest event's, per partition
        events: list[Event] = []
        sources: list[str] = []  # the service each event came from
        for record in records:
            tp = (record.topic, record.partition)
            next_offsets[tp] = record.offset + 1
            try:
                event = self.registry.from_message(record.value, self.cipher, decoded=self._decoded)
                events.append(event)
                sources.append(consistency.source_of(record.topic))
                last_ids[tp] = event.event_id
                recorded[tp] = max(recorded.get(tp, event.recorded_at), event.recorded_at)
            except (UnknownEventType, InvalidEventData, ValueError, KeyError) as err:
                last_ids[tp] = None
                ready()
                self._dead_letter(record, err, session)
        # the positions seen (remembered by apply() once the transaction committed): which
        # events were seen already, and read-your-writes; written with the batch's last
        # writes, in the same transaction, on the condition that they still hold what this
        # process knew
        self._noted = consistency.note_seen(
            self,
            key,
            session,
            records,
            events,
            write=generation not in self._kept,
            defer=True,
            ready=ready,
        )
        if self._noted.missing and generation not in self._kept:
            self._still_written(generation, session)  # a read only when positions were missing
        fresh: set[int] = set()  # id() of the events not seen, by their positions
        by_id: list[Event] = []  # their positions cannot tell: their ids will
        seen_here: set[tuple[str, int]] = set()
        for event, source in zip(events, sources, strict=True):
            before = self._noted.before.get(source)
            position = event.position
            held = None if position is None or before is None else before.holds(position)
            if held is None or position is None or not track_offsets:
                by_id.append(event)  # (a redrive applies a parked event, whose position was seen)
            elif held or (source, position) in seen_here:
                continue  # delivered twice: by a redelivery or a relay that sent it again
            else:
                seen_here.add((source, position))
                fresh.add(id(event))
        # the others by their ids, in one query: which of them were applied already?
        markers = {e.event_id: f"{key}:{e.event_id}" for e in by_id}
        if markers:
            ready()
        done = (
            {
                d["_id"]
                for d in self.processed.find(
                    {"_id": {"$in": list(markers.values())}}, {"_id": 1}, session=session
                )
            }
            if markers
            else set()
        )
        applied: list[str] = []  # the markers to keep
        todo: list[Event] = []
        for event in events:
            marker = markers.get(event.event_id)
            if id(event) not in fresh:
                if marker is None or marker in done:
                    continue
                done.add(marker)
                applied.append(marker)
            todo.append(event)
        if todo:
            self.projection.prepare(todo, view)
        for event in todo:
            self.projection.handle(event, view)
        count = len(todo)
        # the handlers' last writes, the ids kept, the offsets and the positions seen go to
        # the store together, in one command where it can (combine.send): they were three or
        # four round trips per batch, half of a consumer's in the busy hour (issue 14)
        writes = [w for w, _ in self._noted.writes]
        checks = {i: doc for i, (_, doc) in enumerate(self._noted.writes) if doc is not None}
        writes += view.finish_writes()
        writes += [Write(self.processed, "insert_one", {"document": {"_id": m}}) for m in applied]
        if track_offsets:
            # with the recording time of the newest event seen, for the staleness figure
            # (`progress`): a write of its own per batch was a quarter of a consumer's
            # round trips at the flows bench's pace (issue 14)
            writes += self._offset_writes(next_offsets, generation, last_ids, recorded)
        return count, writes, checks

    def _save_offsets(
        self,
        next_offsets: dict[tuple[str, int], int],
        generation: int,
        session: ClientSession,
        last_ids: dict | None = None,
        recorded: dict | None = None,
    ) -> None:
        """The next offset to read per partition, with the id of the event just before it
        (`last_event_id`, None when that record was not an event) so a consumer can tell
        that a broker which lost records gave their offsets to others (ProjectionRunner),
        and the recording time of the newest event read there (`recorded`)."""
        send(self._offset_writes(next_offsets, generation, last_ids, recorded), session)

    def _offset_writes(
        self,
        next_offsets: dict[tuple[str, int], int],
        generation: int,
        last_ids: dict | None = None,
        recorded: dict | None = None,
    ) -> list[Write]:
        key = self._key(generation)
        now = utcnow()
        writes = []
        for (topic, partition), offset in next_offsets.items():
            update: dict = {
                "$set": {
                    "topic": topic,
                    "partition": partition,
                    "next_offset": offset,
                    "last_event_id": (last_ids or {}).get((topic, partition)),
                    "updated_at": now,
                }
            }
            newest = (recorded or {}).get((topic, partition))
            if newest is not None:
                update["$max"] = {"last_event_recorded_at": newest}
            writes.append(
                Write(
                    self.offsets,
                    "update_one",
                    {"filter": {"_id": f"{key}:{topic}:{partition}"}, "update": update},
                    {"upsert": True},
                )
            )
        return writes

    def _park(
        self,
        record: Record,
        generation: int,
        err: Exception,
        session: ClientSession,
        track_offsets: bool = True,
    ) -> int:
        self._dead_letter(record, err, session)
        self._noted = consistency.note_seen(
            self,
            self._key(generation),
            session,
            [record],
            write=generation not in self._kept,
        )
        if track_offsets:
            self._save_offsets(
                {(record.topic, record.partition): record.offset + 1}, generation, session
            )
        return 0

    def _dead_letter(self, record: Record, err: Exception, session: ClientSession) -> None:
        log.error(
            "projection %s rejected %s/%d@%d: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            err,
        )
        self.dead_letters.update_one(
            {"_id": f"{self.name}:{record.topic}:{record.partition}:{record.offset}"},
            {
                "$set": {
                    "projection": self.name,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": repr(err),
                    "raw": record.value.decode("utf-8", "replace"),
                    "at": utcnow(),
                }
            },
            upsert=True,
            session=session,
        )


def apply_together(parts: Sequence[tuple[ProjectionStore, Sequence[Record], int]]) -> int:
    """Apply each projection's records (`(store, records, generation)`, the stores of one
    service, on one client) in one transaction: every projection's writes, kept ids, offsets
    and positions seen go in one command where they can (combine.send) and one commit. A
    service's projections reading the same topic each took a batch of their own, a
    transaction, a commit and a fetch from the broker for every publish: at the flows
    bench's pace that fixed cost per batch was most of a consume process's CPU (py-spy,
    issue 14, session 29), and the commits most of the store's. A handler that fails
    sends the batch again one projection at a time, each parking what fails
    (`ProjectionStore.apply`); store errors and GenerationRetired propagate for the caller
    to retry. Returns the records applied, over the projections."""
    parts = [(store, records, generation) for store, records, generation in parts if records]
    if not parts:
        return 0
    if len(parts) == 1:
        store, records, generation = parts[0]
        return store.apply(records, generation)
    mongo = parts[0][0].mongo
    try:
        counts = in_transaction(mongo, partial(_apply_parts, parts))
    except (PyMongoError, GenerationRetired):
        raise
    except Exception:
        names = ", ".join(store.name for store, _, _ in parts)
        log.exception("projections %s: batch failed; applying each on its own", names)
        return sum(store.apply(records, generation) for store, records, generation in parts)
    rung: list[str] = []
    for (store, _, _), count in zip(parts, counts, strict=True):
        consistency.remember(store._noted)
        if count:  # loops acting on what projections wrote wake (shared.wakeup)
            rung += store._rung()
    if rung:
        chime.announce(dict.fromkeys(rung))
    return sum(counts)


def _apply_parts(
    parts: Sequence[tuple[ProjectionStore, Sequence[Record], int]], session: ClientSession
) -> list[int]:
    """`apply_together`'s transaction: each projection decided in turn, then every write sent
    together (`_send_checked`, as `ProjectionStore._apply` does)."""
    counts: list[int] = []
    writes: list[Write] = []
    checks: dict[int, tuple[str, str]] = {}
    for store, records, generation in parts:
        count, own, own_checks = store._decide(records, generation, session)
        checks.update({len(writes) + i: doc for i, doc in own_checks.items()})
        writes += own
        counts.append(count)
    _send_checked(writes, checks, session)
    return counts


def _send_checked(
    writes: list[Write],
    checks: dict[int, tuple[str, str]],
    session: ClientSession,
    *,
    may_join: bool = True,
) -> None:
    """Send a batch's writes (combine.send); the conditional ones (`checks`: index -> the
    positions document it writes) must each have matched, else another writer moved the
    positions and the batch goes again (consistency.PositionsMoved)."""
    matched = send(writes, session, frozenset(checks), may_join=may_join)
    for i, doc in checks.items():
        if matched[i] != 1:
            raise consistency.PositionsMoved(doc)


def snapshot(collection: Collection, exclude: Iterable[str] = ()) -> list[dict]:
    """A collection's documents sorted by _id, for comparing a rebuild with the live one."""
    drop = set(exclude)
    return [{k: v for k, v in d.items() if k not in drop} for d in collection.find().sort("_id", 1)]


class Ahead:
    """A rebuild's batches applied one after another, each batch's handlers running while the
    batch before it is still being written. A rebuild waited for the store to write each
    batch before it ran the next batch's handlers: half of a 100k-event rebuild was that
    wait, and the other half was the rebuild's own work (py-spy, bench scale, session 26). Now
    a thread of its own sends each batch's writes and commits its transaction, in the
    batches' order, while the next batch is decided in a transaction of its own. That
    transaction's first statement (a read, a write not buffered) waits for the batch before
    to commit (`View`'s `ready`), so it reads from a snapshot that holds it.

    Only for a generation kept since `keep_progress`, whose only writer is this rebuild: its
    positions seen are known in this process, so a batch's are remembered as soon as it is
    decided. A batch that fails to be written fails the rebuild (its generation is then
    dropped): every later batch waits for it, and none commits after it. A projection that
    is not batched writes as its handlers run, so its batches go one at a time. Use `with`:
    leaving waits for the last write, and raises its error unless another one is leaving."""

    def __init__(self, store: ProjectionStore, generation: int):
        self.store, self.generation = store, generation
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"rebuild-{store.name}")
        self._last: Future | None = None  # the write of the batch decided last
        self._older: Future | None = None  # the one before it

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, kind: type | None, leaving: BaseException | None, *tb: object) -> None:
        try:
            self._written()
        except Exception as err:
            if kind is None:
                raise
            if err is not leaving:  # (a write's failure met by the next batch leaves as itself)
                log.exception("rebuild of %s: a batch's write failed too", self.store.name)
        finally:
            self._writer.shutdown(wait=True)

    def _written(self) -> None:
        """Wait for the batches being written; the error, every time, of one that failed."""
        for future in (self._older, self._last):
            if future is not None:
                future.result()
        self._older = self._last = None

    def apply(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._older is not None:  # one batch written while the next is decided, no more
            self._older.result()
            self._older = None
        if self._last is not None and self._last.done():
            self._written()  # a write that failed stops the rebuild here, not at the end
        store = self.store
        if not store.projection.batched or store.fresh(self.generation) is None:
            self._written()
            store.apply(records, self.generation)
            return
        session = store.mongo.start_session()
        try:
            session.start_transaction()
            _, writes, _ = store._decide(records, self.generation, session, ready=self._written)
        except BaseException as err:
            if session.in_transaction:
                session.abort_transaction()
            session.end_session()
            if isinstance(err, PyMongoError | GenerationRetired) or not isinstance(err, Exception):
                raise
            # a handler failed: the batch again as a live consumer does (one by one, parking
            # what fails), once the batch before it is written
            self._written()
            store.apply(records, self.generation)
            return
        consistency.remember(store._noted)  # the next batch's positions follow on from these
        self._older, self._last = (
            self._last,
            self._writer.submit(self._write, self._last, session, writes),
        )

    @staticmethod
    def _write(before: Future | None, session: ClientSession, writes: list[Write]) -> None:
        try:
            if before is not None:
                before.result()  # failed: so does this one, uncommitted
            send(writes, session, may_join=False)
            session.commit_transaction()
        finally:
            if session.in_transaction:
                session.abort_transaction()
            session.end_session()
