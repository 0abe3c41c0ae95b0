"""What a message says and how it goes: the links and the invoice it carries (fetched now,
never stored), the booked dates it names, the last check that an appointment message is still
true, then the rendering and the channel (email, SMS or the staff inbox)."""

from __future__ import annotations

import logging

from shared.crypto import FieldCipher
from shared.events import utcnow
from shared.projections import ProjectionStore

from ..application.book import MessageBook
from ..application.config import NotifyConfig
from ..domain import session_bound
from ..domain.plans import VIDEO_LINK
from .addresses import Addresses
from .channels import EmailChannel, PermanentError, SmsChannel, TransientError, Voided
from .invoices import BillingInvoices, InvoiceGone, invoice_terms
from .links import HomeworkLinks, LinkGone, MeasuresLinks, SchedulingLinks
from .lookups import Lookups
from .render import Renderer

log = logging.getLogger(__name__)


class Delivery:
    def __init__(
        self,
        directory: ProjectionStore,
        book: MessageBook,
        config: NotifyConfig,
        name: str,
        *,
        cipher: FieldCipher | None = None,
    ):
        self.directory, self.book, self.config, self.name = directory, book, config, name
        self.cipher = cipher  # opens the client's video link, sealed in the book
        self.addresses = Addresses(config)
        self.email, self.sms = EmailChannel(config), SmsChannel(config)
        self.links = MeasuresLinks(config.measures_url, config.token_secret)
        self.booking_links = SchedulingLinks(
            config.scheduling_url, config.portal_url, config.token_secret
        )
        self.session_links = SchedulingLinks(
            config.scheduling_url,
            config.portal_url,
            config.token_secret,
            resource="session-links",
            page="my-session",
        )
        self.homework = HomeworkLinks(config.records_url, config.portal_url, config.token_secret)
        self.invoices = BillingInvoices(config.billing_url, config.token_secret)
        self.renderer = Renderer(config.practice_name, config.tz)

    def close(self) -> None:
        """Let go of what the channels keep between messages (the senders' SMTP connections)."""
        self.email.close()

    def deliver(self, message: dict, directory: Lookups | None = None) -> None:
        """Send one claimed message. `directory`: what the dispatcher's batch read of the
        planner's active generation and the book's preferences (else read here, for this
        message alone)."""
        directory = directory or Lookups(self.directory.pinned(), self.book, [message])
        address, audience = self.addresses.of(message, directory)
        context, attachments = self.compose(message, directory)
        rendered = self.renderer.render(message["kind"], message["channel"], context)
        self.send(message, address, audience, rendered, attachments)

    def compose(self, message: dict, directory: Lookups) -> tuple[dict, list]:
        """What the message says (its context for the template) and its attachments."""
        context = dict(message.get("context") or {}, client_id=message.get("client_id"))
        if "video_link" in context and self.cipher is not None:  # sealed (projections.py)
            context["video_link"] = self.cipher.open_value(context["video_link"], VIDEO_LINK)
        self.check_still_true(message, context, directory)
        kind, attachments = message["kind"], []
        if kind == "questionnaire_link":
            gone = "questionnaire request no longer open"
            context.update(self.link(self.links, message["request_id"], gone))
        if kind in ("booking_link", "session_link"):
            links = self.booking_links if kind == "booking_link" else self.session_links
            context.update(self.link(links, message["link_id"], "the link was used or has expired"))
        if kind == "invoice":
            try:
                pdf = self.invoices.pdf(message["invoice_id"], context["number"])
            except InvoiceGone as gone:
                raise Voided(f"billing knows no such invoice ({gone})") from gone
            attachments.append(pdf)
            context.update(invoice_terms(context, self.config))
        if kind == "task_reminder":
            context.update(self.homework_link(message["client_id"]))
        if "session_ids" in context:
            context["dates"] = self.upcoming_dates(context["session_ids"], directory)
        if kind == "risk_alert":
            context.update(self.alert_context(message, directory))
        return context, attachments

    @staticmethod
    def link(fetcher, link_of: str, gone_means: str) -> dict:
        """A link fetched now for the message body; one no longer to be had voids it."""
        try:
            link = fetcher.fetch(link_of)
        except LinkGone as gone:
            raise Voided(f"{gone_means} ({gone})") from gone
        return {"url": link.url, "expires_at": link.expires_at}

    def send(self, message: dict, address, audience: str, rendered, attachments: list) -> None:
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
            self._not_after_disposal(message)

    def _not_after_disposal(self, message: dict) -> None:
        """An inbox item written for a client disposed of meanwhile is taken back, and the
        message voided. A disposal destroys the client's key before any service hears of it,
        and notifications' sweep then deletes the client's inbox items (book.forget_client);
        a dispatcher that had claimed an alert before the sweep and wrote its item after it
        left the answer readable for good (CI, session 28). Looked at after the write, so
        either the sweep's delete or this check finds the item."""
        client_id = message.get("client_id")
        if not client_id or self.cipher is None or not self.cipher.keys.is_disposed(client_id):
            return
        self.book.inbox.delete_one({"_id": message["_id"]})
        raise Voided("the client was disposed of")

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

    def check_still_true(self, message: dict, context: dict, directory: Lookups) -> None:
        """The last word before an appointment message goes: is the appointment still
        booked at that time? (Catches a move the planner saw after a newer preferences
        change, when its `as_of` guard kept the old reminder.)"""
        if not session_bound(message["kind"]) or not message.get("session_id"):
            return
        session = directory.reader("sessions").find_one({"_id": message["session_id"]})
        if session is None:
            return
        if session.get("status") != "booked" or session.get("starts_at") != context.get(
            "starts_at"
        ):
            raise Voided("the appointment changed")

    def alert_context(self, message: dict, directory: Lookups) -> dict:
        """A risk alert goes to staff (the therapist and the clinical lead), who may see the
        client's name; it links to the record in the portal. The clinical detail stays in
        the portal (the e-mail says only that an answer needs follow-up)."""
        client_id = message.get("client_id")
        client = directory.reader("clients").find_one({"_id": client_id}) or {}
        name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p)
        return {
            "client_name": name or None,
            "record_url": f"{self.config.portal_url.rstrip('/')}/clients/{client_id}",
        }

    def upcoming_dates(self, session_ids: list[str], directory: Lookups) -> list:
        """The booked, still-ahead times of a course's or a booster plan's sessions: what the
        message says (how many, the first, each date) is what was actually booked, not what
        was asked for (issue 13, defect 11: "16 ... first 2 June" above 10 dates from 14 July).
        The sessions' own events may still be on their way (other partitions): wait for them."""
        found = list(
            directory.reader("sessions").find(
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
