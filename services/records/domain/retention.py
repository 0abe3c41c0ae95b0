"""Retention and disposal of a client's record (pure rules).

- Mental-health records are kept 20 years after the end of treatment (Records Management
  Code of Practice 2021, Appendix II "Mental health records"; 10 years after death is not
  tracked here), then disposed of.
- The right to erasure does not apply to health records kept by a professional under a duty
  of confidence to provide care (UK GDPR Art. 17(3)(c) with Art. 9(2)(h)): a request inside the
  retention period is refused, with the reason, and the refusal is recorded.
- Disposal in an append-only log is crypto-shredding: `ClientDisposed` is recorded, then the
  client's key is destroyed (shared/crypto.py); the events and their counts stay.
"""

from __future__ import annotations

from datetime import datetime

from shared.domain import Conflict
from shared.events import NewEvent

from .commands import DisposeClient, RequestErasure

RETENTION_YEARS = 20
REFUSAL = (
    "Health records are kept for 20 years after the end of treatment (Records "
    "Management Code of Practice 2021) and the right to erasure does not apply to "
    "records kept to provide care (UK GDPR Art. 17(3)(c), Art. 9(2)(h))."
)


def retention_until(discharged_at: datetime) -> datetime:
    try:
        return discharged_at.replace(year=discharged_at.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return discharged_at.replace(year=discharged_at.year + RETENTION_YEARS, day=28)


def _until(state) -> datetime | None:
    return retention_until(state.discharge["discharged_at"]) if state.discharge else None


def decide_erasure(state, cmd: RequestErasure) -> list[NewEvent]:
    """Inside retention (or still in treatment): refused and recorded. After it: disposal."""
    if state.status == "disposed":
        raise Conflict("this record has already been disposed of", code="disposed")
    until = _until(state)
    if until is None or cmd.now < until:
        return [
            NewEvent(
                "ErasureRefused",
                {
                    "client_id": state.client_id,
                    "requested_by": cmd.requested_by,
                    "request": cmd.request,
                    "refusal": REFUSAL,
                    "retention_until": until,
                },
            )
        ]
    return decide_disposal(state, DisposeClient(state.client_id, cmd.now))


def decide_disposal(state, cmd: DisposeClient) -> list[NewEvent]:
    if state.status == "disposed":
        return []  # already done; the key is destroyed again, harmlessly
    until = _until(state)
    if until is None:
        raise Conflict(
            "a client in treatment cannot be disposed of; discharge first", code="in_treatment"
        )
    if cmd.now < until:
        raise Conflict(
            f"the retention period runs until {until.date().isoformat()}", code="retention"
        )
    return [
        NewEvent(
            "ClientDisposed",
            {
                "client_id": state.client_id,
                "therapist_id": state.details["therapist_id"],
                "retention_ended_at": until,
                "disposed_at": cmd.now,
            },
        )
    ]
