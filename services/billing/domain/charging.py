"""Charges follow the diary (the practice's policy, stated in its price list):
- an attended session is charged at the fee in force on its date (Europe/London): to the
  funder while the client's funded sessions last, then to the client (at their reduced fee
  if they have one);
- a cancellation by the client with less notice than the policy's (24 h by default), and a
  session the client did not attend, are charged to the client as the policy says (nothing,
  the session's fee, or a fixed amount): a funder pays for sessions that took place;
- a cancellation in time, or by the therapist or the practice, and a reschedule charge
  nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.domain import Conflict
from shared.events import NewEvent

from .fees import FeeSchedule, LateCharge
from .money import Money
from .state import CLIENT, FUNDER, AccountState

PRACTICE_TZ = ZoneInfo("Europe/London")
ATTENDED, LATE_CANCELLATION, DID_NOT_ATTEND = "attended", "late_cancellation", "did_not_attend"
_NAMESPACE = uuid.UUID("6f1d3c1e-8f6e-4d59-9a55-2f0d6a1b7c01")


def charge_id_for(session_id: str) -> str:
    """One charge at most per session, with an id derived from it: the reactor meeting the
    same session twice finds the charge already there."""
    return str(uuid.uuid5(_NAMESPACE, f"charge:{session_id}"))


def local_date(moment: datetime) -> date:
    return moment.astimezone(PRACTICE_TZ).date()


@dataclass(frozen=True)
class SessionOutcome:
    """What the diary says happened to a session (billing's `diary` projection)."""

    session_id: str
    client_id: str
    therapist_id: str
    kind: str
    modality: str
    starts_at: datetime
    outcome: str  # attended, missed or cancelled
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class ChargeSession:
    session: SessionOutcome
    schedule: FeeSchedule | None  # the list in force on the session's date


def _late(session: SessionOutcome, notice_hours: int) -> bool:
    if session.cancelled_by != "client" or session.cancelled_at is None:
        return False
    return session.starts_at - session.cancelled_at < timedelta(hours=notice_hours)


def _policy_amount(policy: LateCharge, fee: Money) -> Money | None:
    return {"none": None, "full_fee": fee, "fixed": policy.amount}[policy.charge]


def _reason(session: SessionOutcome, schedule: FeeSchedule | None) -> str | None:
    """What the session is charged for under the policy, or None (no charge)."""
    if session.outcome == "cancelled":
        late = schedule is not None and _late(session, schedule.notice_hours)
        return LATE_CANCELLATION if late else None
    return {"attended": ATTENDED, "missed": DID_NOT_ATTEND}.get(session.outcome)


def _fee(session: SessionOutcome, schedule: FeeSchedule | None) -> Money:
    if schedule is None:
        when = local_date(session.starts_at)
        raise Conflict(f"no price list is in force on {when}", code="no_price_list")
    fee = schedule.fee(session.kind, session.modality, session.therapist_id)
    if fee is None:
        raise Conflict(
            f"the price list of {schedule.effective_from} has no fee for a "
            f"{session.modality} {session.kind} session",
            code="no_price",
        )
    return fee


def _payer_and_amount(
    state: AccountState, reason: str, fee: Money, schedule: FeeSchedule
) -> tuple[str, str | None, Money | None]:
    """(payer, funder's name, net amount): the funder pays attended sessions while funded
    sessions last, at the list's fee; the client pays the rest at their own fee."""
    funding = state.funding
    own_fee = funding.reduced_fee or fee
    if own_fee.currency != fee.currency:
        raise Conflict("the client's reduced fee is in another currency", code="currency")
    if reason == ATTENDED:
        left = funding.funded_sessions is None or state.funded_used() < funding.funded_sessions
        if funding.funded and left:
            return FUNDER, funding.payer_name, fee
        return CLIENT, None, own_fee
    policy = schedule.late_cancellation if reason == LATE_CANCELLATION else schedule.did_not_attend
    return CLIENT, None, _policy_amount(policy, own_fee)


def decide_charge(state: AccountState, command: ChargeSession) -> list[NewEvent]:
    session, schedule = command.session, command.schedule
    if session.session_id in state.by_session:
        return []  # already charged: the diary's event arrived again
    reason = _reason(session, schedule)
    if reason is None:
        return []
    fee = _fee(session, schedule)
    payer, payer_name, net = _payer_and_amount(state, reason, fee, schedule)
    if net is None:
        return []  # the policy charges nothing for this
    return [
        NewEvent(
            "ChargeRaised",
            {
                "client_id": session.client_id,
                "charge_id": charge_id_for(session.session_id),
                "session_id": session.session_id,
                "therapist_id": session.therapist_id,
                "reason": reason,
                "kind": session.kind,
                "modality": session.modality,
                "starts_at": session.starts_at,
                "session_date": local_date(session.starts_at),
                "net": net.wire(),
                "vat": schedule.vat_on(net).wire(),
                "payer": payer,
                "payer_name": payer_name,
                "price_list": schedule.effective_from,
            },
        )
    ]
