"""What to send, and when, for each thing that happened — pure functions of the facts, the
client's contact settings and the current time. Each planned message is a dict keyed by its
idempotency key (`_id`); the same facts always plan the same keys, so a redelivered event
plans nothing new. Addresses are not planned: they are looked up at send time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.inputs import within_range

from .rules import CLIENT, DEFAULT_LEAD, LEAD, QuietHours, deliver_at

URGENT, NORMAL = 0, 1
PRIORITIES = (URGENT, NORMAL)  # every message has one of these; the most urgent first
TOO_LATE_FOR_A_REMINDER = timedelta(hours=1)


@dataclass(frozen=True)
class Contact:
    """How a client may be reached: consented and chosen channels, reminder lead, quiet hours."""

    channels: tuple[str, ...] = ()
    lead: timedelta = DEFAULT_LEAD
    quiet: QuietHours | None = None


def contact_for(
    client: dict | None, prefs: dict | None, default_quiet: QuietHours | None
) -> Contact:
    """Only an active client, and only on channels they consented to (records'
    `reminder_channels`), narrowed by their own preferences if they set any."""
    if not client or client.get("status") != "active":
        return Contact()
    consented = list(client.get("reminder_channels") or [])
    chosen = prefs["channels"] if prefs else consented
    if prefs is None:
        return Contact(tuple(c for c in chosen if c in consented), DEFAULT_LEAD, default_quiet)
    return Contact(
        tuple(c for c in chosen if c in consented),
        timedelta(minutes=prefs["reminder_lead_minutes"]),
        QuietHours.parse(prefs.get("quiet_start"), prefs.get("quiet_end")),
    )


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%MZ")


def _message(
    key: str,
    kind: str,
    channel: str,
    due: datetime,
    *,
    client_id: str,
    therapist_id: str | None,
    recipient: str = CLIENT,
    priority: int = NORMAL,
    refs: dict | None = None,
    context: dict | None = None,
) -> dict:
    return {
        "_id": key,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "client_id": client_id,
        "therapist_id": therapist_id,
        "due_at": due,
        "next_at": due,
        "priority": priority,
        **(refs or {}),
        "context": context or {},
    }


# the name a sealed video link is authenticated with (shared.crypto.FieldCipher.seal_value)
VIDEO_LINK = "video_link"


def session_context(session: dict) -> dict:
    return {
        k: session.get(k)
        for k in ("starts_at", "ends_at", "modality", "room", "video_link", "kind")
    }


def to_client(
    kind: str,
    key_base: str,
    contact: Contact,
    due: datetime,
    *,
    client_id: str,
    therapist_id: str | None,
    refs: dict | None = None,
    context: dict | None = None,
) -> list[dict]:
    return [
        _message(
            f"{key_base}:{channel}",
            kind,
            channel,
            due,
            client_id=client_id,
            therapist_id=therapist_id,
            refs=refs,
            context=context,
        )
        for channel in contact.channels
    ]


def about_session(
    kind: str, key_base: str, contact: Contact, due: datetime, session: dict
) -> list[dict]:
    """A message to the client about one appointment, on each of their channels."""
    return to_client(
        kind,
        key_base,
        contact,
        due,
        client_id=session["client_id"],
        therapist_id=session["therapist_id"],
        refs={"session_id": session["session_id"]},
        context=session_context(session),
    )


def notice(
    kind: str, key_base: str, session: dict, contact: Contact, tz: ZoneInfo, now: datetime
) -> list[dict]:
    """A confirmation, reschedule or cancellation notice: at once (after quiet hours), and
    only while the appointment is still ahead."""
    if session["starts_at"] <= now:
        return []
    due = deliver_at(now, contact.quiet, tz, now=now, latest=session["starts_at"])
    return about_session(kind, key_base, contact, due, session)


def reminders(session: dict, contact: Contact, tz: ZoneInfo, now: datetime) -> list[dict]:
    """The reminder before a booked appointment, `contact.lead` ahead; late but still sent
    when booked inside the lead time, unless the appointment is under an hour away."""
    starts = session["starts_at"]
    if session.get("status") != "booked" or starts - now < TOO_LATE_FOR_A_REMINDER:
        return []
    due = deliver_at(
        max(starts - contact.lead, now),
        contact.quiet,
        tz,
        now=now,
        latest=starts - timedelta(minutes=30),
    )
    return about_session(
        "reminder", f"reminder:{session['session_id']}:{stamp(starts)}", contact, due, session
    )


def course_summary(course: dict, contact: Contact, tz: ZoneInfo, now: datetime) -> list[dict]:
    """One message for a whole course instead of a confirmation per appointment, while any
    of it is still ahead (a course recorded after it ended, as the demo seed does, is not
    announced). What it lists is read at send time: the sessions actually booked."""
    last = course["first_starts_at"] + timedelta(
        weeks=(course["count"] - 1) * course["interval_weeks"]
    )
    if last <= now or not course["session_ids"]:
        return []
    due = deliver_at(now, contact.quiet, tz, now=now, latest=course["first_starts_at"])
    return to_client(
        "course_summary",
        f"course:{course['course_id']}",
        contact,
        due,
        client_id=course["client_id"],
        therapist_id=course["therapist_id"],
        refs={"course_id": course["course_id"]},
        context={
            "first_starts_at": course["first_starts_at"],
            "count": course["count"],
            "interval_weeks": course["interval_weeks"],
            "session_ids": list(course["session_ids"]),
        },
    )


def booster_invitation(plan: dict, contact: Contact, tz: ZoneInfo, now: datetime) -> list[dict]:
    if not plan["session_ids"]:
        return []
    digest = hashlib.sha256("|".join(sorted(plan["session_ids"])).encode()).hexdigest()[:12]
    return to_client(
        "booster_invitation",
        f"boosters:{plan['client_id']}:{digest}",
        contact,
        deliver_at(now, contact.quiet, tz, now=now),
        client_id=plan["client_id"],
        therapist_id=plan["therapist_id"],
        context={
            "count": plan["count"],
            "interval_months": plan["interval_months"],
            "session_ids": list(plan["session_ids"]),
        },
    )


def questionnaire_link(request: dict, contact: Contact, tz: ZoneInfo, now: datetime) -> list[dict]:
    """The link goes when the request is due (a resend: at once); the link itself is fetched
    at send time, one per message, and the links sent earlier keep working."""
    if request["expires_at"] <= now:
        return []
    latest = request.get("session_starts_at") or request["expires_at"]
    due_at = request.get("resent_at") or request["due_at"]
    due = deliver_at(max(due_at, now), contact.quiet, tz, now=now, latest=latest)
    key = f"questionnaire:{request['request_id']}"
    if request.get("resend"):
        key += f":resend-{request['resend']}"
    return to_client(
        "questionnaire_link",
        key,
        contact,
        due,
        client_id=request["client_id"],
        therapist_id=request["therapist_id"],
        refs={"request_id": request["request_id"], "session_id": request.get("session_id")},
        context={
            "session_starts_at": request.get("session_starts_at"),
            "expires_at": request["expires_at"],
        },
    )


FUNDER = "funder"  # the client's insurer or referrer, as billing's FundingSet names them
ENQUIRER = "enquirer"  # someone who got in touch, not (yet) a client: records' EnquiryReceived
ENQUIRER_CHANNELS = ("email", "sms")  # how an enquirer can be told (_enquirer_channel)


def booking_link(link: dict, enquirer: dict | None, now: datetime) -> list[dict]:
    """The times reception offered, as a link, at once, on the one channel the person asked
    to be contacted by (a phone call becomes a text: the link is for their phone). The token
    is fetched at send time (scheduling mints one per message); nothing without a contact."""
    channel = _enquirer_channel(enquirer)
    if channel is None or link["expires_at"] <= now:
        return []
    return [
        _message(
            f"booking-link:{link['link_id']}:{channel}",
            "booking_link",
            channel,
            now,
            client_id=link["client_id"],
            therapist_id=link["therapist_id"],
            recipient=ENQUIRER,
            refs={"link_id": link["link_id"]},
            context={"expires_at": link["expires_at"], "kind": link["kind"]},
        )
    ]


def _enquirer_channel(enquirer: dict | None) -> str | None:
    """The one channel someone who enquired asked to be contacted by (a phone call becomes a
    text: what they are sent is for their phone), if the enquiry gave its address."""
    if not enquirer:
        return None
    email, sms = ENQUIRER_CHANNELS
    channel = email if enquirer.get("contact_by") == "email" else sms
    return channel if enquirer.get("email" if channel == "email" else "phone") else None


def booked_by_link(session: dict, enquirer: dict | None, now: datetime) -> list[dict]:
    """The confirmation for an appointment someone booked by link before they were
    registered (issue 17): the time and how it will happen, at once, to the contact their
    enquiry gave. Its key is the client confirmation's own (`confirmation:<session>`), so a
    registration afterwards does not confirm the same appointment twice (projections.py)."""
    channel = _enquirer_channel(enquirer)
    if channel is None or session["starts_at"] <= now:
        return []
    return [
        _message(
            f"confirmation:{session['session_id']}:{channel}",
            "booked_by_link",
            channel,
            now,
            client_id=session["client_id"],
            therapist_id=session["therapist_id"],
            recipient=ENQUIRER,
            refs={"session_id": session["session_id"]},
            context=session_context(session),
        )
    ]


def session_link(link: dict, contact: Contact, tz: ZoneInfo, now: datetime) -> list[dict]:
    """The client's own link to cancel or move one session (issue 17), at once (after quiet
    hours) while it can still be used; the token is fetched at send time, one per message."""
    if link["expires_at"] <= now:
        return []
    due = deliver_at(now, contact.quiet, tz, now=now, latest=link["expires_at"])
    return to_client(
        "session_link",
        f"session-link:{link['link_id']}",
        contact,
        due,
        client_id=link["client_id"],
        therapist_id=link["therapist_id"],
        refs={"link_id": link["link_id"], "session_id": link["session_id"]},
        context={"starts_at": link["starts_at"], "expires_at": link["expires_at"]},
    )


def task_reminder(
    task: dict, therapist_id: str | None, contact: Contact, tz: ZoneInfo, now: datetime
) -> list[dict]:
    """A nudge before homework is due; the task's wording stays out of the message."""
    due_at = task.get("due_at")
    if due_at is None or due_at - now < TOO_LATE_FOR_A_REMINDER:
        return []
    if not within_range(due_at):
        # stored before every API refused such dates (issue 15): a reminder in year 9999
        # cannot even be stored (BSON overflows), and one that parked the event lost it
        return []
    due = deliver_at(max(due_at - contact.lead, now), contact.quiet, tz, now=now, latest=due_at)
    return to_client(
        "task_reminder",
        f"task:{task['task_id']}",
        contact,
        due,
        client_id=task["client_id"],
        therapist_id=therapist_id,
        refs={"task_id": task["task_id"]},
        context={"due_at": due_at},
    )


def care_ended(
    discharge: dict, contact: Contact, tz: ZoneInfo, now: datetime, *, sessions_cancelled: bool
) -> list[dict]:
    """The client is told, in plain words, that their care has ended (issue 17: discharge
    is the client's to be told, clinical.md); nothing clinical, not the reason."""
    return to_client(
        "care_ended",
        f"care_ended:{discharge['client_id']}:{stamp(discharge['discharged_at'])}",
        contact,
        deliver_at(now, contact.quiet, tz, now=now),
        client_id=discharge["client_id"],
        therapist_id=discharge.get("therapist_id"),
        context={"sessions_cancelled": sessions_cancelled},
    )


def risk_alert(alert: dict, now: datetime) -> list[dict]:
    """To the client's therapist and the clinical lead, by email and in the staff inbox, at
    once: quiet hours never hold a risk alert back (PHQ-9 item 9 / CORE-10 item 6 > 0 needs
    follow-up whatever the total — Kroenke 2001; CORE-10 user manual)."""
    # the answer is sealed with the client's key: after disposal it is absent (shared.crypto)
    context = {
        k: alert.get(k)
        for k in ("instrument", "item", "answer", "unanswered", "indicated_at", "response_id")
    }
    out = []
    for who, recipient in (("therapist", alert["therapist_id"]), ("lead", LEAD)):
        for channel in ("email", "inbox"):
            out.append(
                _message(
                    f"risk:{alert['alert_id']}:{who}:{channel}",
                    "risk_alert",
                    channel,
                    now,
                    client_id=alert["client_id"],
                    therapist_id=alert["therapist_id"],
                    recipient=recipient,
                    priority=URGENT,
                    refs={"alert_id": alert["alert_id"]},
                    context=context,
                )
            )
    return out


def invoice(issued: dict, funder_email: str | None, now: datetime) -> list[dict]:
    """An issued invoice, by e-mail, at once, to whoever pays it: the client for self-pay
    (their address is looked up at send time), the funder when billing's funding holds the
    funder's e-mail address. Without one nothing is planned: the practice sends it itself.
    The PDF is fetched from billing at send time; the context holds no lines, so nothing
    about the sessions (not even their dates) is in the book."""
    to_funder = issued["payer"] == "funder"
    if to_funder and not funder_email:
        return []
    context = {
        "number": issued["number"],
        "issued_on": str(issued["issued_on"]),  # a date: kept as its ISO text
        "total": dict(issued["total"]),
        "credit_applied": dict(issued["credit_applied"]),
    }
    return [
        _message(
            f"invoice:{issued['invoice_id']}:email",
            "invoice",
            "email",
            now,
            client_id=issued["client_id"],
            therapist_id=None,
            recipient=FUNDER if to_funder else CLIENT,
            refs={"invoice_id": issued["invoice_id"]},
            context=context,
        )
    ]
