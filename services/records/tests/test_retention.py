"""Retention rules in given/when/then: erasure refused inside the retention period (and
recorded), disposal only after it, and nothing clinical after disposal."""

from datetime import UTC, datetime

from services.records.domain import commands as c
from services.records.domain import record
from services.records.domain.commands import DisposeClient, RequestErasure
from services.records.domain.retention import REFUSAL, retention_until
from shared.domain import Conflict
from shared.events import NewEvent
from testkit.given import given

from .test_domain import AT, CID, DISCHARGED, REGISTERED

IN_TREATMENT = datetime(2027, 1, 1, tzinfo=UTC)
DAY_BEFORE_END = datetime(2046, 3, 1, 10, 0, tzinfo=UTC)
END = datetime(2046, 3, 2, 10, 0, tzinfo=UTC)
DISPOSED = NewEvent(
    "ClientDisposed",
    {"client_id": CID, "therapist_id": "t1", "retention_ended_at": END, "disposed_at": END},
)


def erase(now):
    return RequestErasure(CID, "the client", "please delete my file", now)


def test_retention_ends_twenty_years_after_discharge():
    assert retention_until(AT) == END
    # twenty years on from a 29 February is a leap day too, except across 2100
    leap = datetime(2080, 2, 29, tzinfo=UTC)
    assert retention_until(leap) == datetime(2100, 2, 28, tzinfo=UTC)


def test_erasure_while_in_treatment_is_refused_and_recorded():
    given(record, [REGISTERED]).when(erase(IN_TREATMENT)).then(
        [
            NewEvent(
                "ErasureRefused",
                {
                    "client_id": CID,
                    "requested_by": "the client",
                    "request": "please delete my file",
                    "refusal": REFUSAL,
                    "retention_until": None,
                },
            )
        ]
    )


def test_erasure_inside_retention_is_refused_with_the_date_it_ends():
    given(record, [REGISTERED, DISCHARGED]).when(erase(DAY_BEFORE_END)).then(
        [
            NewEvent(
                "ErasureRefused",
                {
                    "client_id": CID,
                    "requested_by": "the client",
                    "request": "please delete my file",
                    "refusal": REFUSAL,
                    "retention_until": END,
                },
            )
        ]
    )


def test_erasure_after_retention_disposes_of_the_record():
    given(record, [REGISTERED, DISCHARGED]).when(erase(END)).then([DISPOSED])


def test_disposal_needs_discharge_and_the_end_of_retention():
    given(record, [REGISTERED]).when(DisposeClient(CID, END)).then_raises(
        Conflict, "discharge first"
    )
    given(record, [REGISTERED, DISCHARGED]).when(DisposeClient(CID, DAY_BEFORE_END)).then_raises(
        Conflict, "runs until 2046-03-02"
    )
    given(record, [REGISTERED, DISCHARGED]).when(DisposeClient(CID, END)).then([DISPOSED])


def test_disposing_twice_changes_nothing_and_nothing_clinical_follows():
    given(record, [REGISTERED, DISCHARGED, DISPOSED]).when(DisposeClient(CID, END)).then([])
    given(record, [REGISTERED, DISCHARGED, DISPOSED]).when(erase(END)).then_raises(
        Conflict, "already"
    )
    given(record, [REGISTERED, DISCHARGED, DISPOSED]).when(
        c.CorrectDetails(CID, {"email": "x@y.z"}, "typo")
    ).then_raises(Conflict, "disposed")
