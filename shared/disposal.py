"""Disposal in every service (crypto-shredding, shared/crypto.py). When records reports
`ClientDisposed`, the client's key is already destroyed; each service must still forget the
decrypted copies it keeps. A queue projection notes the disposal; a worker loop then runs the
service's own hook for its non-projection data (e.g. messages, links) and rebuilds every
projection of the service from the log — the personal fields now read as "[disposed]" — while
the counts stay, because the events stay."""

from __future__ import annotations

import logging
import threading
import time

from pymongo import IndexModel
from pymongo.errors import PyMongoError

from . import idempotency
from .config import Settings
from .consumer import RebuildStopped, projection_store, rebuild
from .crypto import cipher_for
from .events import utcnow
from .mongo import client as mongo_client
from .projections import Projection
from .services import ServiceDefinition
from .wakeup import projection_bell

log = logging.getLogger(__name__)
CLOCK_MARGIN = 5.0  # seconds the clock of the host that destroyed a key may be behind ours
UNDESTROYED_TOLD = 60.0  # seconds a disposal waits for its key before the operator is told


class DisposalQueue(Projection):
    name = "disposals"
    sources = ("records",)
    collections = {"disposals": [IndexModel("done_at")]}
    rings = ("disposals_bell",)  # the worker rests on it (DisposalWorker.run)

    def __init__(self, service: str):
        self.service = service

    def on_ClientDisposed(self, event, view):
        view["disposals"].update_one(
            {"_id": event.data["client_id"]},
            {"$setOnInsert": {"disposed_at": event.data["disposed_at"], "done_at": None}},
            upsert=True,
        )

    # an enquiry that never became a client is disposed of the same way: its data was
    # sealed under the client id reserved for the person (services/records/domain/enquiry.py)
    on_EnquiryDisposed = on_ClientDisposed


class DisposalWorker:
    def __init__(
        self,
        settings: Settings,
        definition: ServiceDefinition,
        poll_seconds: float = 2.0,
        idle_rest: float = 30.0,
    ) -> None:
        self.settings, self.definition, self.poll = settings, definition, poll_seconds
        self.idle_rest = idle_rest  # with change streams: the queue's apply wakes the worker
        self.queue = DisposalQueue(definition.name)
        self.settle = settings.key_cache_seconds + CLOCK_MARGIN
        self.next_look: float | None = None  # seconds until a pending client is due
        # when this worker first found a client's key not destroyed, and those it told of
        self._undestroyed: dict[str, float] = {}
        self._told: set[str] = set()

    def pending(self) -> list[str]:
        store = projection_store(self.settings, self.queue)
        return [d["_id"] for d in store.reader("disposals").find({"done_at": None})]

    def due(self, clients: list[str]) -> list[str]:
        """The clients whose key was destroyed at least `settle` seconds ago: no process
        holds it any more. Sets `next_look` for the others (a key not destroyed yet: the
        worker's poll)."""
        if not clients:
            self.next_look = None
            return []
        destroyed, now = cipher_for(self.settings).keys.destroyed_at(clients), utcnow()
        due, waits = [], []
        for client_id in clients:
            at = destroyed.get(client_id)
            if at is None:
                # records destroys the key just after the event; still there a minute on, it
                # was not (records stopped in between): asking for the disposal again does it
                since = self._undestroyed.setdefault(client_id, time.monotonic())
                if time.monotonic() - since > UNDESTROYED_TOLD and client_id not in self._told:
                    self._told.add(client_id)
                    log.warning(
                        "disposal of %s waits: the client's key has not been destroyed "
                        "(ask records for the disposal again)",
                        client_id,
                    )
            else:
                self._undestroyed.pop(client_id, None)
                self._told.discard(client_id)
            left = self.poll if at is None else self.settle - (now - at).total_seconds()
            if left <= 0:
                due.append(client_id)
            else:
                waits.append(left)
        self.next_look = min(waits) if waits else None
        return due

    def sweep(self, stop: threading.Event | None = None) -> int:
        """Forget every pending disposed client that is due (`due`); returns how many.
        `stop` ends the rebuilds between two batches (RebuildStopped): the clients stay
        pending for the next sweep."""
        clients = self.due(self.pending())
        if not clients:
            return 0
        name = self.definition.name
        db = mongo_client(self.settings.mongo_uri_of(name))[self.settings.database(name)]
        for client_id in clients:
            idempotency.forget_client(db, client_id)  # answers kept for Idempotency-Key replays
            if self.definition.dispose is not None:
                self.definition.dispose(self.settings, client_id)
        for projection in self.definition.projections():
            log.info("disposal: rebuilding %s.%s", self.definition.name, projection.name)
            # no plaintext left behind
            rebuild(self.settings, projection, keep_previous=False, stop=stop)
        queue = projection_store(self.settings, self.queue).reader("disposals")
        # one document at a time: on the local store a multi-document update outside a
        # transaction that meets a transaction's write (the queue's consumer noting another
        # disposal) wedged every transaction of the store (bench/README.md, gaps)
        done_at = utcnow()
        for client_id in clients:
            queue.update_one({"_id": client_id}, {"$set": {"done_at": done_at}})
        return len(clients)

    def run(self, stop: threading.Event) -> None:
        mongo = projection_store(self.settings, self.queue).mongo
        bell = projection_bell(
            mongo,
            self.settings.database(self.definition.name),
            DisposalQueue.rings[0],
            name="disposal",
        )
        try:
            while not stop.is_set():
                ticket = bell.ticket()
                try:
                    self.sweep(stop)
                except RebuildStopped:
                    break  # asked to stop mid-rebuild: the next start sweeps them again
                except PyMongoError as err:
                    log.warning("disposal: store unavailable (%s)", err)
                rest = self.idle_rest if bell.watching else self.poll
                if self.next_look is not None:
                    rest = min(rest, self.next_look)
                bell.wait(ticket, rest, stop)
        finally:
            bell.close()
