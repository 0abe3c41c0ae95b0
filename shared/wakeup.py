"""Waiting that costs neither CPU nor latency: a loop with nothing to do rests until a
collection it depends on changes (a MongoDB change stream, which the store holds open and
answers when a write commits) or a timeout passes.

Polling the store in a loop was what an idle `make up` spent 1.2 cores on (issue 14): the
relays asked for pending events every 50 ms, the dispatchers for due messages every 0.1-0.25 s,
the consumers fetched from the broker every 0.3 s. With a doorbell the relay wakes on an
insert into `events`, a consumer when a source's relay marks events published, a dispatcher
on a new or changed message; the timeouts remain for what no write announces (a reminder
falling due, records produced to a topic without a relay, a store without change streams).

A process opens one change stream per store client, whatever the number of doorbells,
filtered on the server to the collections some doorbell watches and reduced to their names:
the local store scans its oplog for every open stream on every write, so forty streams (one
per loop) cost more than the polling they replaced (BENCH_SECTIONS=idle make bench).

    bell = Doorbell([db["events"]])
    ticket = bell.ticket()          # before looking for work, so no ring is missed
    if not do_work():
        bell.wait(ticket, timeout=5.0, stop=stop)
    bell.close()
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from . import chime
from .backoff import Backoff

log = logging.getLogger(__name__)
AWAIT_MS = 1000  # how long the store holds an empty getMore before answering
# How long a loop rests with nothing to do while its bell watches (a chime or a change stream
# tells it of every write it acts on). Only what no write announces waits this long: a
# message or a questionnaire request falling due at its time, or a chime lost. At 2 s, the
# idle stack's dispatchers and work loops were about half of the store's operations at rest
# (issue 14, `BENCH_SECTIONS=idle make bench`); a reminder a few seconds late is no loss.
IDLE_REST = 10.0
_hubs: dict[int, _Hub] = {}
_hubs_lock = threading.Lock()


class _Hub:
    """The process's change stream on one store client, shared by every Doorbell on it."""

    def __init__(self, mongo):
        self.mongo = mongo
        self.lock = chime.lock  # one lock: a chime or a change wakes the same waits
        self.rings: Counter = Counter()  # "db.coll" -> changes seen
        self.wanted: Counter = Counter()  # "db.coll" -> doorbells watching it
        self.open = False
        self._changed = False  # the wanted set changed: reopen the stream with it
        self._thread: threading.Thread | None = None

    def subscribe(self, names: Sequence[str]) -> None:
        with self.lock:
            fresh = [n for n in names if not self.wanted[n]]
            self.wanted.update(names)
            if fresh:
                self._changed = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="doorbell")
                self._thread.start()

    def unsubscribe(self, names: Sequence[str]) -> None:
        with self.lock:
            self.wanted.subtract(names)
            for n in names:
                if self.wanted[n] <= 0:
                    del self.wanted[n]
                    self._changed = True  # reopen without it (or end, when none is left)

    def _ring(self, names: Iterable[str]) -> None:
        with self.lock:
            names = list(names)
            self.rings.update(names)
            chime.wake(names)

    def _pipeline(self, names: list[str]) -> list[dict]:
        which = [{"ns.db": n.split(".", 1)[0], "ns.coll": n.split(".", 1)[1]} for n in names]
        return [{"$match": {"$or": which}}, {"$project": {"ns": 1}}]

    def _run(self) -> None:
        backoff = Backoff()
        while True:
            with self.lock:
                names = sorted(self.wanted)
                self._changed = False
                if not names:
                    self._thread = None
                    return
            try:
                with self.mongo.watch(self._pipeline(names), max_await_time_ms=AWAIT_MS) as stream:
                    self.open = True
                    self._ring(names)  # (re)opened: anything may have changed meanwhile
                    backoff.succeeded()
                    while not self._changed and stream.alive:
                        change = stream.try_next()
                        if change is not None:
                            ns = change.get("ns") or {}
                            self._ring([f"{ns.get('db')}.{ns.get('coll')}"])
            except PyMongoError as err:
                log.debug("doorbell: change stream unavailable (%s)", err)
                self.open = False
                backoff.failed()
            finally:
                self.open = False


def _hub(mongo: MongoClient) -> _Hub:
    with _hubs_lock:
        hub = _hubs.get(id(mongo))
        if hub is None or hub.mongo is not mongo:
            hub = _hubs[id(mongo)] = _Hub(mongo)
        return hub


def change_streams_enabled() -> bool:
    """Doorbells open change streams only when `RAPPORT_CHANGE_STREAMS=1`. Off by default:
    in this session's full test runs the local store (SecantusDB) stopped answering reads and
    endSessions after hours of open change streams, database drops and transactions; the
    cause is not pinned down, so the loops poll with their adaptive rests (the fallback every
    caller already has) unless an operator turns the streams on (real MongoDB)."""
    return os.environ.get("RAPPORT_CHANGE_STREAMS", "0").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )


class Doorbell:
    """Rings when one of `collections` (see `__init__`) changes. `watching` is
    False while the change stream is not open (store down, or a store without change
    streams): callers then poll as they did before."""

    def __init__(
        self,
        collections: Collection | Sequence[Collection],
        *,
        name: str = "doorbell",
        pace: float = 0.0,
    ):
        """`collections` on more than one store (two clients) are heard by chimes only: a
        change stream is one store's, so such a bell opens none and, without chimes, its
        callers poll (`watching` False).

        `pace`: the least time between two wakes of the bell's loop. Under load a
        collection changes many times a second; a loop woken by every change looks for work
        more often than its old poll did and adds to the store's load (issue 14: the risk
        alerts' latency in the flows bench tripled). Rings within `pace` of the last wake
        are gathered into one, so a busy loop never looks more often than every `pace`, and
        an idle one still wakes at once."""
        collections = [collections] if isinstance(collections, Collection) else list(collections)
        self.name, self.pace = name, pace
        self._woke = float("-inf")  # monotonic time wait() last returned
        self.names = [c.full_name for c in collections]
        one_store = len({id(c.database.client) for c in collections}) == 1
        streams = bool(collections) and one_store and change_streams_enabled()
        # without change streams, a bell on a hub of its own that never opens
        self._hub = _hub(collections[0].database.client) if streams else _Hub(None)
        if streams:
            self._hub.subscribe(self.names)
        chime.want(self.names)  # before listening: its socket's listing names them at once
        self._chimed = chime.listen()  # this process hears what the others wrote (shared.chime)
        self._closed = False
        # what a ring on one of its names notifies (shared.chime.wake), on the process's lock
        self._cond = threading.Condition(chime.lock)
        self.wakes = 0  # times a ring on one of its names (or its closing) woke its wait

    @property
    def watching(self) -> bool:
        """True when a change to one of its collections will ring it (a change stream is
        open, or this process hears chimes): callers may then rest long."""
        return (self._hub.open or self._chimed) and not self._closed

    def ticket(self) -> int:
        """Take before looking for work; `wait(ticket)` returns at once if a change came since."""
        with self._hub.lock:
            return self._count()

    def _count(self) -> int:
        return sum(self._hub.rings[n] + chime.rings[n] for n in self.names)

    def wait(self, ticket: int, timeout: float, stop: threading.Event | None = None) -> bool:
        """Rest until a change after `ticket`, `timeout` seconds, or `stop`. True if rung."""
        deadline = time.monotonic() + timeout
        with self._cond:
            chime.wait_on(self.names, self._cond)
            try:
                while self._count() == ticket and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or (stop is not None and stop.is_set()):
                        break
                    # wake now and then to notice `stop` (a threading.Event cannot notify us)
                    if self._cond.wait(min(remaining, 0.5)):
                        self.wakes += 1
                rung = self._count() != ticket
            finally:
                chime.stop_waiting(self.names, self._cond)
        if rung and self.pace > 0:  # gather the rings that follow within `pace`
            early = self._woke + self.pace - time.monotonic()
            rest = min(early, max(0.0, deadline - time.monotonic()))
            if rest > 0:
                (stop or threading.Event()).wait(rest)  # a stop still ends it at once
        self._woke = time.monotonic()
        return rung

    def close(self) -> None:
        if not self._closed:
            with self._cond:
                self._closed = True
                self._cond.notify_all()  # a wait on it ends now
            if self._hub.mongo is not None:
                self._hub.unsubscribe(self.names)


def projections_bell(
    mongo: MongoClient, database: str, *, name: str = "projections", pace: float = 0.0
) -> Doorbell:
    """Rings when a projection of `database` applied events: every apply writes its offsets
    in `projection_offsets` in the same transaction (and chimes that name). For loops that
    act on what projections wrote (a reactor, a canceller)."""
    return Doorbell(mongo[database]["projection_offsets"], name=name, pace=pace)


def projection_bell(
    mongo: MongoClient, database: str, ring: str, *, name: str, pace: float = 0.0
) -> Doorbell:
    """Rings when the one projection that announces `ring` (Projection.rings) applied
    events, for a loop that acts only on what that projection writes. Those rings are
    chimes (shared.chime); a process that hears none rests on every projection of the
    database instead (projections_bell). The disposal worker woke on every batch of every
    projection of its service and read its queue each time: a tenth of billing's store
    reads in the flows section (issue 14)."""
    if chime.listen():
        return Doorbell([mongo[database][ring]], name=name, pace=pace)  # a name, not a collection
    return projections_bell(mongo, database, name=name, pace=pace)


def work_loop(
    store: Any,
    step: Callable[[], int | None],
    stop: threading.Event,
    *,
    name: str,
    interval: float,
    idle_rest: float = IDLE_REST,
    again_when_busy: bool = True,
    ring: str | None = None,
) -> None:
    """Run `step` until `stop`, resting on the projections bell of `store`'s database (an
    EventStore or ProjectionStore: `.mongo`, `.db`) between rounds, or on the bell of the one
    projection that rings `ring` (projection_bell): `idle_rest` while the bell watches,
    `interval` without change streams. A step that did something runs again at once if
    `again_when_busy` (it may have left work past its batch); a step that goes on by itself
    while its looks come back full passes False, and a ring during the step still wakes it
    at once. A store outage or a bug in one document is logged and retried: it must not stop
    the loop for everyone else."""
    if ring is None:
        bell = projections_bell(store.mongo, store.db.name, name=name, pace=interval)
    else:
        bell = projection_bell(store.mongo, store.db.name, ring, name=name, pace=interval)
    try:
        while not stop.is_set():
            ticket = bell.ticket()  # before looking for work, so no ring is missed
            try:
                busy = step()
            except PyMongoError as err:
                log.warning("%s: store unavailable (%s)", name, err)
                busy = 0
            except Exception:
                log.exception("%s: step failed; trying again", name)
                busy = 0
            if busy and again_when_busy:
                continue
            bell.wait(ticket, idle_rest if bell.watching else interval, stop)
    finally:
        bell.close()
