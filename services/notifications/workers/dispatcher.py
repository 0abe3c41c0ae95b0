"""The dispatcher: the scheduler loop that sends what the planner put in the message book.

Exactly once, as far as a sender can: each message is claimed atomically (pending →
sending, with a lease) before it is sent, and recorded as sent — event and book in one
transaction — only after the SMTP server or the SMS provider accepted it. Two dispatchers
never hold the same claim; a restart finds unfinished claims when their lease runs out.
The window that remains: a crash after the server accepted and before "sent" was recorded
resends once the lease expires. Such a resend carries the same Message-ID (email) or
Idempotency-Key (SMS), both derived from the idempotency key, so it is recognisable and a
provider that honours the key drops it. Failures are retried with exponential backoff, then
recorded as failed (listed by `GET /notifications?status=failed`). What a message says and
where it goes are delivery.py and addresses.py."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from pymongo.errors import PyMongoError

from shared import chime
from shared.backoff import Backoff
from shared.config import Settings
from shared.crypto import cipher_for
from shared.events import Actor, registry, utcnow
from shared.eventstore import ConcurrencyError, EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.outbox import Lease
from shared.projections import ProjectionStore
from shared.wakeup import Doorbell

from ..application import Application
from ..application import book as states
from ..application.book import MessageBook, ensure_indexes
from ..application.config import NotifyConfig
from ..domain import RecordFailure, RecordSent, Schedule, Void, retry_delay
from ..projections import Planner, RiskAlerts
from .channels import Deferred, DeliveryError, PermanentError, TransientError, Voided
from .delivery import Delivery
from .lookups import Lookups

log = logging.getLogger(__name__)
META = Metadata(actor=Actor.system("notifications-dispatcher"), correlation_id="dispatcher")


_ADDRESSES = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+|\+?\d[\d ()-]{6,}\d")


def redact(error: str) -> str:
    """Servers quote the address they refused; an error kept in the book and in events
    must not carry a client's email address or phone number."""
    return _ADDRESSES.sub("[address]", error)[:500]


def info_of(doc: dict) -> dict:
    return {
        "notification_id": doc["_id"],
        "kind": doc["kind"],
        "channel": doc["channel"],
        "client_id": doc.get("client_id"),
        "recipient": doc["recipient"],
        "due_at": doc["due_at"],
    }


class Dispatcher:
    # each lane claims up to BATCH due messages at once and sends them on up to SENDERS
    # threads (a risk answer plans four messages; two answers at once, eight). The main
    # dispatcher sent one message at a time: about 7 a second, while the busy hour booked 13
    # a second, so the clients' confirmations fell 10-15 s behind (issue 14). Eight at a
    # time on four threads still left them 7-9 s behind once the flows were offered 50 ticks
    # a second: each batch pays a look, its lookups and its record, a dozen round trips
    # that a saturated store answers in 100 ms each; twenty-four on eight threads, 0.8-1.7 s
    # (p50, side by side). A test's dispatcher may take fewer at a time.
    BATCH, SENDERS = 24, 8
    ANNOUNCE = 50  # planned and voided messages announced per look
    SENT_SOON = states.SENT_SOON  # a message due now is its sender's to announce so long

    def __init__(
        self,
        settings: Settings,
        config: NotifyConfig | None = None,
        *,
        name: str = "dispatcher",
        urgent_only: bool = False,
    ):
        """`urgent_only`: the urgent lane, which sends risk alerts only and announces nothing,
        so an alert never waits behind a busy hour of confirmations and reminders (the main
        dispatcher still sends alerts too; claims keep each message to one sender)."""
        self.settings, self.name, self.urgent_only = settings, name, urgent_only
        self.config = config or NotifyConfig.from_env(settings)
        self.sent_total = 0
        self._ready = False
        self._pool: ThreadPoolExecutor | None = None  # the senders
        # the urgent lane's: records what it sent while the lane claims the next (`_record_behind`)
        self._recorder: ThreadPoolExecutor | None = None
        self._recording: Future | None = None  # the last batch given to the recorder
        self._closing = False
        self._orphans_next = 0.0  # when to look for lapsed claims again (`_orphans_due`)
        self.backlog = False  # the last step left work it may look for at once (`step`)
        self._full = False  # the last look at the due messages came back full

    def _setup(self) -> None:
        mongo = mongo_client(self.settings.mongo_uri_of("notifications"))
        db = mongo[self.settings.database("notifications")]
        self.mongo, self.db = mongo, db
        self.store = EventStore(mongo, db.name, registry, cipher=cipher_for(self.settings))
        self.store.ensure_indexes()
        self.application = Application(self.store)
        ensure_indexes(db)
        self.book = MessageBook(db)
        self.announcer = Lease(
            db["dispatcher_leases"],
            "announce",
            f"{socket.gethostname()}:{os.getpid()}:{self.name}:{id(self)}",
            ttl=max(15.0, self.config.poll_seconds * 10),
        )
        self.directory = ProjectionStore(mongo, db.name, Planner(self.config), registry)
        self.delivery = Delivery(
            self.directory, self.book, self.config, self.name, cipher=self.store.cipher
        )
        self._ready = True

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Send until `stop`. With nothing to do it rests until a message is written (the
        planner's insert of a risk alert wakes it at once: shared.wakeup) or `idle_rest`
        passes, so a message falling due later (a reminder) goes out within that rest;
        without change streams it polls every `poll_seconds` as before."""
        backoff, bell = 0.2, None
        try:
            while not stop.is_set():
                try:
                    if not self._ready:
                        self._setup()
                        # messages are written by the planner's projection batches, and by
                        # commands beside their events (preferences): either rings it
                        bell = self._bell()
                    ticket = bell.ticket()
                    self.step(stop=stop)
                    backoff = 0.2
                    if not self.backlog:  # a write since the ticket still rings it at once
                        bell.wait(ticket, self._rest(bell.watching), stop)
                except PyMongoError as err:
                    log.warning(
                        "%s: store unavailable (%s); retrying in %.1fs", self.name, err, backoff
                    )
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            if bell is not None:
                bell.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._recorder is not None:  # what was sent is recorded before the lane stops
                self._closing = True  # (tried once more at most, not for a whole lease)
                self._recorder.shutdown(wait=True)
                self._recorder, self._recording = None, None
            if self._ready:
                self.delivery.close()
        if self._ready:
            try:
                self.announcer.release()
            except PyMongoError:
                pass  # it expires by itself

    def _bell(self) -> Doorbell:
        """What wakes the loop. The urgent lane, where chimes are heard, rests on the risk
        alerts' own bell: woken by every projection batch of the service, it looked for
        alerts some twenty times a second in the busy hour, and an alert's ring could fall
        in the pace after a useless wake (issue 14: planned -> claimed was the slowest hop
        but one). Otherwise, and for the main dispatcher, every write to the book: the
        planner's batches, and commands writing beside their events (preferences)."""
        db = self.book.messages.database
        if self.urgent_only and chime.listen():
            ring = db[RiskAlerts.rings[0]]  # a name on the chime, not a collection
            return Doorbell([ring], name=self.name)
        return Doorbell(
            [self.book.messages, db["projection_offsets"], db["events"]],
            name=self.name,
            pace=self._rest(False),  # never looks more often than it polled
        )

    def _rest(self, watching: bool) -> float:
        polling = (
            min(self.config.poll_seconds, 0.1) if self.urgent_only else self.config.poll_seconds
        )
        return max(polling, self.config.idle_rest_seconds) if watching else polling

    def step(self, batch: int = 48, stop: threading.Event | None = None) -> int:
        """Announce what was planned or voided, then send about `batch` due messages, BATCH
        at a time (stopping between two of those when asked to, never in the middle).

        It looks again only while a look came back full, and `backlog` tells the loop
        whether to step again at once: a look that found fewer than it asked for found all
        that was due, and whatever is planned later rings the bell. Each step that sent
        something looked once more for nothing, and the loop then stepped again at once and
        looked a third time: two looks of three came back empty in the flows bench, a tenth
        of notifications' store operations (issue 14)."""
        # announcing appends to the streams of messages the recorder may be recording sent
        # (one sent before it was announced): side by side, the two transactions conflicted
        # and fell back to one record at a time, and confirmations waited 26 s to be claimed
        # (issue 14). While a record is on its way, announcing waits for a later step; a
        # message sent meanwhile records its NotificationScheduled with its NotificationSent
        recording = self._recording is not None and not self._recording.done()
        done = 0 if self.urgent_only or recording else self.announce()
        sent = 0
        while (stop is None or not stop.is_set()) and sent < batch:
            taken = self.dispatch_together()
            sent += taken
            if not taken or not self._full:
                break
        # more to announce, or stopped at `batch` right after a full look
        self.backlog = done >= self.ANNOUNCE or (sent >= batch and self._full)
        if not self.backlog and not self.urgent_only:
            self._recorded()  # before resting, what was sent is recorded
        return done + sent

    # -- recording -------------------------------------------------------------------------
    def record(self, key: str, command, mark) -> None:
        """Append the notification's events (if any) and update the book in one transaction."""
        self.application.record(key, command, META, mark)

    def announce(self, limit: int | None = None) -> int:
        """Record NotificationScheduled / NotificationVoided for what the planner wrote.
        One dispatcher at a time does this (a lease), in one transaction per batch, so
        several dispatchers do not race to append the same events.

        A risk alert is left to whoever sends it: its NotificationSent (or Failed) records
        the NotificationScheduled first, in the same transaction (domain/deciders.py). When
        the announcer marked alerts too, its transaction and the urgent lane's "sent" wrote
        the same message documents; in the busy hour each aborted the other (WriteConflict)
        until the planner's long batch let the announcer through, and alerts planned in
        between waited up to 10 s to be claimed (issue 14). A voided alert is still
        announced here: no one sends it.

        So is a message due now, planned less than SENT_SOON ago (`_left_to_sender`): a
        confirmation, a questionnaire link. Announced, it was a write of its message more,
        and a share of a transaction, a moment before its sender wrote it again: each
        update of a message was over a millisecond of the local store's time, and the
        store, saturated with the flows offered 50 ticks/s, queued every hop behind them
        (issue 14, session 23). One its senders have not recorded by then (the dispatchers
        down, a backlog) is announced as before."""
        if not self.announcer.acquire():
            return 0
        limit = self.ANNOUNCE if limit is None else limit
        messages = self.book.messages
        now = utcnow()
        # read through the (announced, announce_at) index: those whose time has come, risk
        # alerts never (application/book.py, `announce_at`)
        ready = {"announced": False, "announce_at": {"$lte": now}}
        planned = [d for d in messages.find(ready).limit(limit) if not self._left_to_sender(d, now)]
        voided = list(
            messages.find({"void_announced": False, "status": states.VOIDED}).limit(limit)
        )
        # one entry per message: planned and voided before it was announced is both (once
        # it came twice, and the two appends to one stream broke the whole batch for good)
        batch: dict[str, tuple[dict, list, dict]] = {
            d["_id"]: (d, [Schedule(info_of(d))], {"announced": True}) for d in planned
        }
        for d in voided:
            _, commands, _ = batch.get(d["_id"], (d, [], {}))
            batch[d["_id"]] = (
                d,
                commands + [Void(info_of(d), d.get("void_reason") or "voided")],
                {"void_announced": True, "announced": True},
            )
        if not batch:
            return 0
        try:
            self._record_batch(list(batch.values()))
        except ConcurrencyError:  # a sender recorded one of them meanwhile: one by one
            for doc, commands, flags in batch.values():
                for command in commands:
                    self.record(
                        doc["_id"],
                        command,
                        lambda s, d=doc, f=flags: messages.update_one(
                            {"_id": d["_id"]}, {"$set": f}, session=s
                        ),
                    )
        return len(batch)

    @classmethod
    def _left_to_sender(cls, doc: dict, now) -> bool:
        """Whether a planned message is about to be sent, and its sender to record it
        NotificationScheduled with NotificationSent (`announce`)."""
        return (
            doc.get("status") in (states.PENDING, states.SENDING)
            and doc.get("next_at") is not None
            and doc["next_at"] <= now
            and doc.get("created_at") is not None
            and doc["created_at"] > now - cls.SENT_SOON
        )

    def _record_batch(self, batch) -> None:
        def mark(session) -> None:
            self.book.mark_announced({doc["_id"]: flags for doc, _, flags in batch}, session)

        commands = [(doc["_id"], commands) for doc, commands, _ in batch]
        self.application.record_all(commands, META, mark)

    # -- sending ---------------------------------------------------------------------------
    def dispatch_together(self, limit: int | None = None) -> int:
        """Up to `limit` (BATCH) due messages at once, the most urgent first (a risk answer
        plans four: the therapist and the clinical lead, by email and in the staff inbox),
        sent side by side and recorded "sent" in one transaction. One by one, the lead's
        email waited for the therapist's email and inbox entry to be claimed, sent and
        recorded first, each a dozen round trips to a store the busy hour keeps queueing,
        and the main dispatcher sent fewer confirmations a second than were booked (issue
        14). Returns how many were claimed."""
        lease = timedelta(seconds=self.config.lease_seconds)
        limit = self.BATCH if limit is None else limit
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.SENDERS, thread_name_prefix=self.name)
        now = utcnow()
        due = self.book.due(limit, now, urgent_only=self.urgent_only, orphans=self._orphans_due())
        self._full = len(due) >= limit  # more may be due than this look asked for
        if not due:
            return 0
        # the planner's active generation, read once for the whole batch, and what the
        # batch's messages read of it (clients, sessions, therapists) and of the clients'
        # preferences, one query each for the batch: it was three reads per message, made
        # by the senders one message at a time (issue 14; workers/lookups.py)
        directory = Lookups(self.directory.pinned(), self.book, due)
        # the batch's claims go in one command (MessageBook.claim_all), then each sender
        # sends one message: side by side, so the lead's e-mail of a risk alert does not wait
        # for the messages before it, nor a batch of confirmations for one another (issue 14)
        claimed = self.book.claim_all(due, lease, self.name, now, urgent_only=self.urgent_only)
        futures = [(m, self._pool.submit(self.attempt, m, directory)) for m in claimed]
        started = [(message, future.result()) for message, future in futures]
        sent = [m for m, outcome in started if outcome is None]
        for message, outcome in started:
            if outcome is not None:
                self.settle(message, outcome)
        if sent:
            self._record_behind(sent)
        return len(started)

    def _orphans_due(self) -> bool:
        """Whether to look for claims whose sender died (their lease ran out) in this batch:
        at the first look, then once per quarter of a lease. A claim is an orphan only a lease
        after it was made, so a quarter of a lease more to find it is the same order of wait;
        looking before every batch was a third of the dispatchers' looks at the book in the
        busy hour (issue 14)."""
        now = time.monotonic()
        if now < self._orphans_next:
            return False
        self._orphans_next = now + self.config.lease_seconds / 4
        return True

    def attempt(self, message: dict, directory: Lookups | None = None) -> Exception | None:
        """Deliver a claimed message: None when it went, else why not."""
        try:
            self.delivery.deliver(message, directory)
        except (Voided, Deferred, DeliveryError) as why:
            return why
        except Exception as err:  # a bug must not stop every other message: retry this one
            log.exception("%s: delivering %s failed unexpectedly", self.name, message["_id"])
            return TransientError(f"internal error: {type(err).__name__}")
        return None

    def settle(self, message: dict, why: Exception) -> None:
        """A claimed message that did not go: voided, deferred, or failed (retried later)."""
        if isinstance(why, Voided):
            self.book.void_claimed(message, str(why))
        elif isinstance(why, Deferred):
            self.book.defer(message, why.until, "quiet hours")
        elif isinstance(why, DeliveryError):
            self.failed(message, why)

    def _record_behind(self, sent: list[dict]) -> None:
        """The urgent lane records what it sent on a thread of its own, in order, and goes on
        to the next alerts at once. Recording appends to the service's store, and waits for
        the turn of the main dispatcher's transactions (a batch of confirmations, fifty
        messages announced): in the busy hour the lane waited there a third of its time,
        and an alert planned meanwhile waited with it (issue 14: planned -> claimed was
        3.3 s at p99 with the flows offered 50 ticks a second). Until it is recorded, a
        message stays claimed by the lane, as before; a record that fails is tried again
        while the claims' lease lasts, and after that the message goes again, as a
        dispatcher's crash after sending leaves it (the Message-ID is the same)."""
        if self._recorder is None:
            self._recorder = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-recorder")
        if not self.urgent_only:
            # the main dispatcher claims and sends the next batch while the last one is
            # recorded, and no further ahead: it waited for each record in turn, a third of
            # its time at 47 ticks a second (py-spy, issue 14), and one batch behind keeps
            # what waits to be recorded well within its claims' lease
            self._recorded()
        self._recording = self._recorder.submit(self._record_sent_patiently, sent)

    def _recorded(self) -> None:
        """Wait until what was sent is recorded (`_record_behind`)."""
        if self._recording is not None:
            recording, self._recording = self._recording, None
            recording.result()

    def _record_sent_patiently(self, sent: list[dict]) -> None:
        until = min(m["lease_until"] for m in sent)
        backoff = Backoff()
        while True:
            try:
                self.record_sent(sent)
                return
            except PyMongoError as err:
                if self._closing or utcnow() + timedelta(seconds=backoff.delay) >= until:
                    log.error(
                        "%s: %d sent messages not recorded (%s); they go again once their "
                        "claims lapse",
                        self.name,
                        len(sent),
                        err,
                    )
                    return
                log.warning(
                    "%s: recording sent failed (%s); retrying in %.1fs",
                    self.name,
                    err,
                    backoff.delay,
                )
                backoff.failed()

    def record_sent(self, messages: list[dict]) -> None:
        """Record each message's NotificationSent with the book's "sent", in one transaction
        (one by one if a sender recorded one of them meanwhile)."""
        now = utcnow()
        commands = {m["_id"]: RecordSent(info_of(m), now, m["attempts"]) for m in messages}
        try:
            self.application.record_all(
                [(m["_id"], [commands[m["_id"]]]) for m in messages],
                META,
                lambda s: self.book.mark_all_sent(messages, s) and None,
            )
        except ConcurrencyError:
            for m in messages:
                self.record(
                    m["_id"], commands[m["_id"]], lambda s, m=m: self.book.mark_sent(m, s) and None
                )
        self.sent_total += len(messages)
        for m in messages:
            log.info(
                "%s: sent %s %s (attempt %d)", self.name, m["kind"], m["channel"], m["attempts"]
            )

    def failed(self, message: dict, err: DeliveryError) -> None:
        key, attempts, error = message["_id"], message["attempts"], redact(str(err))
        final = isinstance(err, PermanentError) or attempts >= self.config.max_attempts
        command = RecordFailure(info_of(message), utcnow(), attempts, error, final)
        if final:
            log.error(
                "%s: %s failed for good after %d attempts: %s", self.name, key, attempts, error
            )
            self.record(key, command, lambda s: self.book.mark_failed(message, error, s) and None)
            return
        until = utcnow() + retry_delay(
            attempts, self.config.backoff_seconds, self.config.backoff_cap_seconds
        )
        log.warning(
            "%s: %s attempt %d failed (%s); next try %s", self.name, key, attempts, error, until
        )
        self.record(
            key, command, lambda s: self.book.retry_later(message, until, error, s) and None
        )
