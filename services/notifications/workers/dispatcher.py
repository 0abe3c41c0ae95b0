"""The dispatcher: the scheduler loop that sends what the planner put in the message book.

Exactly once, as far as a sender can: each message is claimed atomically (pending →
sending, with a lease) before it is sent, and recorded as sent — event and book in one
transaction — only after the SMTP server or the SMS provider accepted it. Two dispatchers
never hold the same claim; a restart finds unfinished claims when their lease runs out.
The window that remains: a crash after the server accepted and before "sent" was recorded
resends once the lease expires. Such a resend carries the same Message-ID (email) or
Idempotency-Key (SMS), both derived from the idempotency key, so it is recognisable and a
provider that honours the key drops it. Failures are retried with exponential backoff, then
recorded as failed (listed by `GET /notifications?status=failed`)."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from datetime import timedelta

from pymongo.errors import PyMongoError

from shared.config import Settings
from shared.crypto import DISPOSED, cipher_for
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
from ..domain import (
    LEAD,
    RecordFailure,
    RecordSent,
    Schedule,
    Void,
    quiet_ends,
    retry_delay,
    session_bound,
)
from ..domain.plans import ENQUIRER, FUNDER, VIDEO_LINK, contact_for
from ..projections import Planner
from .channels import DeliveryError, EmailChannel, PermanentError, SmsChannel, TransientError
from .invoices import BillingInvoices, InvoiceGone, invoice_terms
from .links import HomeworkLinks, LinkGone, MeasuresLinks, SchedulingLinks
from .render import Renderer

log = logging.getLogger(__name__)
META = Metadata(actor=Actor.system("notifications-dispatcher"), correlation_id="dispatcher")


class Voided(Exception):
    """The message must not go after all (reason in args[0])."""


class Deferred(Exception):
    def __init__(self, until):
        super().__init__(f"deferred until {until.isoformat()}")
        self.until = until


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

    def _setup(self) -> None:
        mongo = mongo_client(self.settings.mongo_uri)
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
        self.email, self.sms = EmailChannel(self.config), SmsChannel(self.config)
        self.links = MeasuresLinks(self.config.measures_url, self.config.token_secret)
        self.booking_links = SchedulingLinks(
            self.config.scheduling_url, self.config.portal_url, self.config.token_secret
        )
        self.session_links = SchedulingLinks(
            self.config.scheduling_url,
            self.config.portal_url,
            self.config.token_secret,
            resource="session-links",
            page="my-session",
        )
        self.homework = HomeworkLinks(
            self.config.records_url, self.config.portal_url, self.config.token_secret
        )
        self.invoices = BillingInvoices(self.config.billing_url, self.config.token_secret)
        self.renderer = Renderer(self.config.practice_name, self.config.tz)
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
                        db = self.book.messages.database
                        bell = Doorbell(
                            [self.book.messages, db["projection_meta"], db["events"]],
                            name=self.name,
                        )
                    ticket = bell.ticket()
                    busy = self.step(stop=stop)
                    backoff = 0.2
                    if not busy:
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
        if self._ready:
            try:
                self.announcer.release()
            except PyMongoError:
                pass  # it expires by itself

    def _rest(self, watching: bool) -> float:
        polling = (
            min(self.config.poll_seconds, 0.1) if self.urgent_only else self.config.poll_seconds
        )
        return max(polling, self.config.idle_rest_seconds) if watching else polling

    def step(self, batch: int = 20, stop: threading.Event | None = None) -> int:
        """Announce what was planned or voided, then send up to `batch` due messages
        (stopping between two messages when asked to, never in the middle of one)."""
        done = 0 if self.urgent_only else self.announce()
        for _ in range(batch):
            if (stop is not None and stop.is_set()) or not self.dispatch_one():
                break
            done += 1
        return done

    # -- recording -------------------------------------------------------------------------
    def record(self, key: str, command, mark) -> None:
        """Append the notification's events (if any) and update the book in one transaction."""
        self.application.record(key, command, META, mark)

    def announce(self, limit: int = 50) -> int:
        """Record NotificationScheduled / NotificationVoided for what the planner wrote.
        One dispatcher at a time does this (a lease), in one transaction per batch, so
        several dispatchers do not race to append the same events."""
        if not self.announcer.acquire():
            return 0
        messages = self.book.messages
        planned = list(messages.find({"announced": False}).limit(limit))
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

    def _record_batch(self, batch) -> None:
        def mark(session) -> None:
            for doc, _, flags in batch:
                self.book.messages.update_one({"_id": doc["_id"]}, {"$set": flags}, session=session)

        commands = [(doc["_id"], commands) for doc, commands, _ in batch]
        self.application.record_all(commands, META, mark)

    # -- sending ---------------------------------------------------------------------------
    def dispatch_one(self) -> bool:
        message = self.book.claim(
            timedelta(seconds=self.config.lease_seconds), self.name, urgent_only=self.urgent_only
        )
        if message is None:
            return False
        key, info, attempts = message["_id"], info_of(message), message["attempts"]
        try:
            self.deliver(message)
        except Voided as why:
            self.book.void_claimed(message, str(why))
        except Deferred as later:
            self.book.defer(message, later.until, "quiet hours")
        except DeliveryError as err:
            self.failed(message, err)
        except Exception as err:  # a bug must not stop every other message: retry this one
            log.exception("%s: delivering %s failed unexpectedly", self.name, key)
            self.failed(message, TransientError(f"internal error: {type(err).__name__}"))
        else:
            self.record(
                key,
                RecordSent(info, utcnow(), attempts),
                lambda s: self.book.mark_sent(message, s) and None,
            )
            self.sent_total += 1
            log.info(
                "%s: sent %s %s (attempt %d)",
                self.name,
                message["kind"],
                message["channel"],
                attempts,
            )
        return True

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

    def deliver(self, message: dict) -> None:
        address, audience = self.address(message)
        context = dict(message.get("context") or {}, client_id=message.get("client_id"))
        if "video_link" in context:  # sealed under the client's key in the book (projections.py)
            context["video_link"] = self.store.cipher.open_value(context["video_link"], VIDEO_LINK)
        self.check_still_true(message, context)
        if message["kind"] == "questionnaire_link":
            try:
                link = self.links.fetch(message["request_id"])
            except LinkGone as gone:
                raise Voided(f"questionnaire request no longer open ({gone})") from gone
            context.update(url=link.url, expires_at=link.expires_at)
        if message["kind"] in ("booking_link", "session_link"):
            links = self.booking_links if message["kind"] == "booking_link" else self.session_links
            try:
                link = links.fetch(message["link_id"])
            except LinkGone as gone:
                raise Voided(f"the link was used or has expired ({gone})") from None
            context.update(url=link.url, expires_at=link.expires_at)
        attachments = []
        if message["kind"] == "invoice":
            try:
                pdf = self.invoices.pdf(message["invoice_id"], context["number"])
            except InvoiceGone as gone:
                raise Voided(f"billing knows no such invoice ({gone})") from gone
            attachments.append(pdf)
            context.update(invoice_terms(context, self.config))
        if message["kind"] == "task_reminder":
            context.update(self.homework_link(message["client_id"]))
        if "session_ids" in context:
            context["dates"] = self.upcoming_dates(context["session_ids"])
        if message["kind"] == "risk_alert":
            context.update(self.alert_context(message))
        rendered = self.renderer.render(message["kind"], message["channel"], context)
        if message["channel"] == "email":
            self.email.send(message["_id"], address, rendered, attachments)
        elif message["channel"] == "sms":
            self.sms.send(message["_id"], address, rendered)
        else:
            self.book.inbox.update_one(
                {"_id": message["_id"]},
                {
                    "$setOnInsert": {
                        "audience": audience,
                        "kind": message["kind"],
                        "alert_id": message.get("alert_id"),
                        "client_id": message.get("client_id"),
                        "therapist_id": message.get("therapist_id"),
                        "title": rendered.subject,
                        "body": rendered.body,
                        "details": message.get("context"),
                        "created_at": utcnow(),
                        "read_at": None,
                        "read_by": None,
                    }
                },
                upsert=True,
            )

    def homework_link(self, client_id: str) -> dict:
        """The client's homework page for the task reminder (records). The reminder is worth
        sending without it: records down or refusing leaves the link out, not the reminder."""
        try:
            link = self.homework.fetch(client_id)
        except LinkGone as gone:
            raise Voided(f"the client's record is closed ({gone})") from gone
        except (TransientError, PermanentError) as err:
            log.warning("%s: task reminder sent without the homework link: %s", self.name, err)
            return {}
        return {"url": link.url, "expires_at": link.expires_at}

    def check_still_true(self, message: dict, context: dict) -> None:
        """The last word before an appointment message goes: is the appointment still
        booked at that time? (Catches a move the planner saw after a newer preferences
        change, when its `as_of` guard kept the old reminder.)"""
        if not session_bound(message["kind"]) or not message.get("session_id"):
            return
        session = self.directory.reader("sessions").find_one({"_id": message["session_id"]})
        if session is None:
            return
        if session.get("status") != "booked" or session.get("starts_at") != context.get(
            "starts_at"
        ):
            raise Voided("the appointment changed")

    def address(self, message: dict) -> tuple[str | None, str]:
        """(address, inbox audience), looked up now so corrected details are used."""
        recipient, channel = message["recipient"], message["channel"]
        if message["kind"] == "invoice":
            return self._payer_address(message), recipient
        if recipient == "client":
            return self._client_address(message), "client"
        if recipient == ENQUIRER:
            found = self.directory.reader("enquirers").find_one({"_id": message["client_id"]})
            address = (found or {}).get("email" if channel == "email" else "phone")
            if not address or address == DISPOSED:
                raise Voided("no way to reach the person who enquired")
            return address, ENQUIRER
        if recipient == LEAD:
            return self.config.lead_email, LEAD
        if channel == "inbox":
            return None, recipient
        therapist = self.directory.reader("therapists").find_one({"_id": recipient})
        if not therapist or not therapist.get("email"):
            raise TransientError("the therapist's email address is not known yet")
        return therapist["email"], recipient

    def _client_address(self, message: dict) -> str:
        client = self.directory.reader("clients").find_one({"_id": message["client_id"]})
        if client and message["kind"] == "care_ended":
            client = {**client, "status": "active"}  # the one message after care ends
        if not client or client.get("status") != "active":
            raise Voided("the client is discharged or unknown")
        contact = contact_for(
            client, self.book.preferences_of(message["client_id"]), self.config.default_quiet
        )
        if message["channel"] not in contact.channels:
            raise Voided(f"the client is no longer to be contacted by {message['channel']}")
        address = client.get("email") if message["channel"] == "email" else client.get("phone")
        if not address:
            raise PermanentError(f"no {message['channel']} address on record for the client")
        now = utcnow()
        until = quiet_ends(now, contact.quiet, self.config.tz)
        starts = (message.get("context") or {}).get("starts_at")
        if until is not None and (starts is None or until < starts):
            raise Deferred(until)
        return address

    def _payer_address(self, message: dict) -> str:
        """An invoice goes to whoever pays it, looked up now: the funder's e-mail from
        billing's funding, or the client's own. It is not a reminder, so neither the
        reminder channels nor discharge hold it back (a last invoice follows the last
        session); quiet hours still do, for the client."""
        client_id = message["client_id"]
        if message["recipient"] == FUNDER:
            funder = self.directory.reader("funders").find_one({"_id": client_id}) or {}
            if funder.get("payer") == "self" or not funder.get("payer_email"):
                raise Voided("billing's funding holds no e-mail address for the funder")
            return funder["payer_email"]
        client = self.directory.reader("clients").find_one({"_id": client_id})
        if client is None:
            raise TransientError("the client is not known yet")
        address = client.get("email")
        if not address or address == DISPOSED:
            raise Voided("no e-mail address on record for the client")
        prefs = self.book.preferences_of(client_id)
        quiet = contact_for({**client, "status": "active"}, prefs, self.config.default_quiet).quiet
        until = quiet_ends(utcnow(), quiet, self.config.tz)
        if until is not None:
            raise Deferred(until)
        return address

    def alert_context(self, message: dict) -> dict:
        """A risk alert goes to staff (the therapist and the clinical lead), who may see the
        client's name; it links to the record in the portal. The clinical detail stays in
        the portal (the e-mail says only that an answer needs follow-up)."""
        client_id = message.get("client_id")
        client = self.directory.reader("clients").find_one({"_id": client_id}) or {}
        name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p)
        return {
            "client_name": name or None,
            "record_url": f"{self.config.portal_url.rstrip('/')}/clients/{client_id}",
        }

    def upcoming_dates(self, session_ids: list[str]) -> list:
        """The booked, still-ahead times of a course's or a booster plan's sessions: what the
        message says (how many, the first, each date) is what was actually booked, not what
        was asked for (issue 13, defect 11: "16 ... first 2 June" above 10 dates from 14 July).
        The sessions' own events may still be on their way (other partitions): wait for them."""
        found = list(
            self.directory.reader("sessions").find(
                {"_id": {"$in": list(session_ids)}}, {"starts_at": 1, "status": 1}
            )
        )
        if len(found) < len(set(session_ids)):
            raise TransientError("the booked sessions are not all known yet")
        now = utcnow()
        dates = sorted(
            d["starts_at"] for d in found if d.get("status") == "booked" and d["starts_at"] > now
        )
        if not dates:
            raise Voided("none of the appointments is still ahead and booked")
        return dates
