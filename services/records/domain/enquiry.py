"""An enquiry: someone who got in touch and is not (yet) a client. Its own stream
(`enquiry-<id>`), decided here like the client record: commands, `decide` and `evolve`
through one table each, no I/O and no clock (a command carries its time).

The enquiry reserves the client id the person will have if they are registered, and every
enquiry event carries it as `client_id`: their personal data is sealed under that client's
key (shared/crypto.py), a slot booked for them by link is already theirs, and registering
them needs nothing retyped. An enquiry that never becomes a client is disposed of after
`RETENTION` (crypto-shredding, as a client record is); a converted one is kept with the
client's record, under the same key, and goes when that record goes.

Steps: received -> (contact attempts logged) -> assessment offered / on the waiting list ->
registered as a client, or declined and signposted elsewhere; then, unconverted, disposed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

# UK GDPR Art. 5(1)(e) (storage limitation): an enquiry is kept only as long as it is needed
# to answer it. The practice's stated period: one year after its last step (a person
# declined or never reached may get back in touch within that time and be recognised).
RETENTION = timedelta(days=365)
PRIORITIES = ("routine", "soon", "urgent")  # order of the waiting list, most pressing last
CONTACT_BY = ("phone", "sms", "email")
ATTEMPT_CHANNELS = ("phone", "sms", "email")
ATTEMPT_OUTCOMES = ("reached", "no_answer", "left_message", "sent")
OPEN = ("received", "offered", "waiting")


@dataclass(frozen=True)
class ReceiveEnquiry:
    enquiry_id: str
    client_id: str  # reserved: the person's id if they become a client
    given_name: str
    family_name: str
    contact_by: str
    concern: str
    preferred_modality: str
    consent_to_contact: bool
    received_at: datetime
    email: str | None = None
    phone: str | None = None
    preferred_times: str | None = None
    heard_from: str | None = None


@dataclass(frozen=True)
class LogContactAttempt:
    channel: str
    outcome: str
    by: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class OfferAssessment:
    therapist_id: str
    by: str
    at: datetime


@dataclass(frozen=True)
class AddToWaitingList:
    priority: str
    by: str
    at: datetime


@dataclass(frozen=True)
class DeclineEnquiry:
    reason: str
    by: str
    at: datetime
    signposted_to: str | None = None


@dataclass(frozen=True)
class ConvertEnquiry:
    """Registering the person as a client: the client record's own `RegisterClient` is
    built from the enquiry (`registration`), this marks the enquiry done."""

    by: str
    at: datetime


@dataclass(frozen=True)
class DisposeEnquiry:
    now: datetime


@dataclass(frozen=True)
class EnquiryState:
    status: str | None = (
        None  # None (no such enquiry), OPEN..., "declined", "registered", "disposed"
    )
    details: Mapping[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None
    last_step_at: datetime | None = None
    attempts: tuple[Mapping[str, Any], ...] = ()
    waiting: Mapping[str, Any] | None = None  # {priority, added_at}
    offered_to: str | None = None  # therapist id
    version: int = 0

    @property
    def client_id(self) -> str | None:
        return self.details.get("client_id")


DETAIL_FIELDS = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "contact_by",
    "concern",
    "preferred_modality",
    "preferred_times",
    "heard_from",
    "consent_to_contact",
)
_CONTACT_NEEDS = {"phone": "phone", "sms": "phone", "email": "email"}


# -- decisions ------------------------------------------------------------------------------
def _receive(s: EnquiryState, cmd: ReceiveEnquiry) -> list[NewEvent]:
    if s.status is not None:
        raise Conflict("this enquiry was received already")
    if not cmd.consent_to_contact:
        raise Invalid(
            "we can only answer an enquiry if you agree to us contacting you",
            field="consent_to_contact",
        )
    needed = _CONTACT_NEEDS[cmd.contact_by]
    if not getattr(cmd, needed):
        raise Invalid(
            f"you asked us to contact you by {cmd.contact_by}: please give your {needed}",
            field=needed,
        )
    data = {k: getattr(cmd, k) for k in DETAIL_FIELDS}
    return [
        NewEvent(
            "EnquiryReceived",
            {
                "enquiry_id": cmd.enquiry_id,
                "client_id": cmd.client_id,
                **data,
                "received_at": cmd.received_at,
            },
        )
    ]


def _must_be_open(s: EnquiryState, action: str) -> None:
    if s.status is None:
        raise NotFound("no such enquiry")
    if s.status not in OPEN:
        raise Conflict(f"the enquiry was {s.status}; {action} is no longer possible", code=s.status)


def _ids(s: EnquiryState) -> dict:
    return {"enquiry_id": s.details["enquiry_id"], "client_id": s.client_id}


def _attempt(s: EnquiryState, cmd: LogContactAttempt) -> list[NewEvent]:
    _must_be_open(s, "logging a contact attempt")
    return [
        NewEvent(
            "EnquiryContactAttempted",
            {
                **_ids(s),
                "channel": cmd.channel,
                "outcome": cmd.outcome,
                "note": cmd.note,
                "by": cmd.by,
                "attempted_at": cmd.at,
            },
        )
    ]


def _offer(s: EnquiryState, cmd: OfferAssessment) -> list[NewEvent]:
    _must_be_open(s, "offering an assessment")
    data = {**_ids(s), "therapist_id": cmd.therapist_id, "by": cmd.by, "offered_at": cmd.at}
    return [NewEvent("AssessmentOffered", data)]


def _waitlist(s: EnquiryState, cmd: AddToWaitingList) -> list[NewEvent]:
    """Added once; adding again changes the priority and keeps the date first added (weeks
    waiting count from then)."""
    _must_be_open(s, "the waiting list")
    if s.waiting and s.waiting["priority"] == cmd.priority:
        raise Conflict("already on the waiting list with that priority", code="unchanged")
    added_at = s.waiting["added_at"] if s.waiting else cmd.at
    data = {**_ids(s), "priority": cmd.priority, "by": cmd.by, "added_at": added_at}
    return [NewEvent("EnquiryWaitlisted", data)]


def _decline(s: EnquiryState, cmd: DeclineEnquiry) -> list[NewEvent]:
    _must_be_open(s, "declining")
    data = {
        **_ids(s),
        "reason": cmd.reason,
        "signposted_to": cmd.signposted_to,
        "by": cmd.by,
        "declined_at": cmd.at,
    }
    return [NewEvent("EnquiryDeclined", data)]


def _convert(s: EnquiryState, cmd: ConvertEnquiry) -> list[NewEvent]:
    _must_be_open(s, "registering")
    return [NewEvent("EnquiryConverted", {**_ids(s), "by": cmd.by, "registered_at": cmd.at})]


def retention_until(s: EnquiryState) -> datetime:
    return s.last_step_at + RETENTION


def _dispose(s: EnquiryState, cmd: DisposeEnquiry) -> list[NewEvent]:
    if s.status is None:
        raise NotFound("no such enquiry")
    if s.status == "disposed":
        return []
    if s.status == "registered":
        raise Conflict(
            "the enquiry became a client record and is kept, and disposed of, with it",
            code="registered",
        )
    until = retention_until(s)
    if cmd.now < until:
        raise Conflict(
            f"an enquiry is kept until {until.date().isoformat()} (a year after its last step)",
            code="retained",
        )
    data = {**_ids(s), "retention_ended_at": until, "disposed_at": cmd.now}
    return [NewEvent("EnquiryDisposed", data)]


def registration(s: EnquiryState, extra: Mapping[str, Any]) -> dict:
    """The client's details carried over from the enquiry (nothing retyped); `extra` adds
    what an enquiry does not ask (date of birth, therapist) and may override the rest."""
    d = s.details
    channels = [c for c, needed in (("email", "email"), ("sms", "phone")) if d.get(needed)]
    carried = {
        "client_id": s.client_id,
        "given_name": d["given_name"],
        "family_name": d["family_name"],
        "email": d.get("email"),
        "phone": d.get("phone"),
        "preferred_modality": d["preferred_modality"],
        "reminder_channels": tuple(channels),
        "referral_source": f"self (enquiry; heard of us: {d.get('heard_from') or 'not said'})",
    }
    return {**carried, **{k: v for k, v in extra.items() if v is not None}}


DECIDERS: dict[type, Callable[[EnquiryState, Any], list[NewEvent]]] = {
    ReceiveEnquiry: _receive,
    LogContactAttempt: _attempt,
    OfferAssessment: _offer,
    AddToWaitingList: _waitlist,
    DeclineEnquiry: _decline,
    ConvertEnquiry: _convert,
    DisposeEnquiry: _dispose,
}


# -- evolving -------------------------------------------------------------------------------
def _received(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    details = {k: d.get(k) for k in ("enquiry_id", "client_id", *DETAIL_FIELDS)}
    return replace(s, status="received", details=details, received_at=d["received_at"])


def _attempted(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    attempt = {k: d.get(k) for k in ("channel", "outcome", "note", "by", "attempted_at")}
    return replace(s, attempts=(*s.attempts, attempt))


def _offered(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    return replace(s, status="offered", offered_to=d["therapist_id"])


def _waitlisted(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    return replace(
        s, status="waiting", waiting={"priority": d["priority"], "added_at": d["added_at"]}
    )


def _declined(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    return replace(s, status="declined")


def _converted(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    return replace(s, status="registered")


def _disposed(s: EnquiryState, d: Mapping, at) -> EnquiryState:
    return replace(s, status="disposed")


EVOLVERS: dict[str, Callable[[EnquiryState, Mapping, Any], EnquiryState]] = {
    "EnquiryReceived": _received,
    "EnquiryContactAttempted": _attempted,
    "AssessmentOffered": _offered,
    "EnquiryWaitlisted": _waitlisted,
    "EnquiryDeclined": _declined,
    "EnquiryConverted": _converted,
    "EnquiryDisposed": _disposed,
}
ENQUIRY_EVENT_TYPES = tuple(EVOLVERS)


def _when(event) -> datetime | None:
    return getattr(event, "recorded_at", None) or getattr(event, "occurred_at", None)


class Enquiry:
    """The decider (shared.domain.Decider) of one enquiry."""

    def initial_state(self) -> EnquiryState:
        return EnquiryState()

    def evolve(self, state: EnquiryState, event) -> EnquiryState:
        at = step_time(event.data) or _when(event) or state.last_step_at
        new = EVOLVERS[event.type](state, event.data, at)
        return replace(new, version=state.version + 1, last_step_at=at)

    def decide(self, state: EnquiryState, command) -> list[NewEvent]:
        return DECIDERS[type(command)](state, command)


_STEP_TIMES = (
    "received_at",
    "attempted_at",
    "offered_at",
    "declined_at",
    "registered_at",
    "disposed_at",
)


def step_time(d: Mapping) -> datetime | None:
    """When the step happened, as the event states it (a re-prioritised waiting list entry
    keeps `added_at`, so its step time is the envelope's)."""
    return next((d[k] for k in _STEP_TIMES if d.get(k)), None)


def weeks_waiting(added_at: datetime, today: date) -> int:
    return max(0, (today - added_at.date()).days // 7)


enquiry = Enquiry()
