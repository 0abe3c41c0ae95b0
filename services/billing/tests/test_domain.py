"""Billing rules, given/when/then, no I/O."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.billing.domain import (
    Account,
    ChargeSession,
    Fees,
    FeeSchedule,
    Money,
    SessionOutcome,
    SetFees,
    SetFunding,
    charge_id_for,
    ledger,
)
from services.billing.domain.fees import VAT_EXEMPT_STATEMENT
from shared.domain import Conflict, Invalid, fold
from shared.events import NewEvent
from testkit.given import given

GBP = "GBP"


def fees(effective_from=date(2026, 1, 1), treatment=9000, **policy):
    return {
        "effective_from": effective_from,
        "currency": GBP,
        "prices": [
            {"kind": "assessment", "modality": None, "therapist_id": None, "amount": 12000},
            {"kind": "treatment", "modality": None, "therapist_id": None, "amount": treatment},
            {"kind": "treatment", "modality": "video", "therapist_id": "t2", "amount": 7500},
            {"kind": "booster", "modality": None, "therapist_id": None, "amount": 8000},
        ],
        "notice_hours": policy.get("notice_hours", 24),
        "late_cancellation": policy.get("late", {"charge": "full_fee", "amount": None}),
        "did_not_attend": policy.get("dna", {"charge": "fixed", "amount": 4500}),
        "vat": policy.get("vat", {"exempt": True, "rate_basis_points": None, "number": None}),
    }


def schedule(**kw) -> FeeSchedule:
    return FeeSchedule.from_data(fees(**kw))


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def session(n: int, outcome="attended", **kw) -> SessionOutcome:
    base = {
        "session_id": f"s{n}",
        "client_id": "c1",
        "therapist_id": "t1",
        "kind": "treatment",
        "modality": "video",
        "starts_at": at(1) + timedelta(weeks=n - 1),
        "outcome": outcome,
    }
    return SessionOutcome(**{**base, **kw})


def charged(history, command) -> list[NewEvent]:
    """The events a charge command produces after `history` (and the history grown by them)."""
    events = Account().decide(fold(Account(), history), command)
    history.extend(events)
    return events


# -- money -------------------------------------------------------------------------------------
def test_money_is_whole_pence_with_a_currency():
    assert Money(1050) + Money(25) == Money(1075)
    assert Money(9000).share(2000) == Money(1800)  # 20 % VAT
    assert Money(333).share(2000) == Money(67)  # 66.6 rounds half up
    assert Money(123456).text() == "£1,234.56"
    with pytest.raises(TypeError):
        Money(10.5)
    with pytest.raises(Invalid):
        Money(100, "GBP") + Money(100, "EUR")


# -- price list ----------------------------------------------------------------------------------
def test_the_most_specific_price_wins():
    s = schedule()
    assert s.fee("treatment", "video", "t2") == Money(7500)
    assert s.fee("treatment", "video", "t1") == Money(9000)
    assert s.fee("treatment", "telephone", "t2") == Money(9000)


def test_a_new_price_list_takes_effect_today_or_later():
    first = NewEvent("FeesSet", fees())
    given(Fees(), [first]).when(SetFees(fees(date(2026, 4, 1)), today=date(2026, 3, 10))).then(
        [NewEvent("FeesSet", fees(date(2026, 4, 1)))]
    )
    given(Fees(), [first]).when(
        SetFees(fees(date(2026, 3, 1)), today=date(2026, 3, 10))
    ).then_raises(Invalid, "today or later")


def test_a_list_in_force_may_gain_a_price_it_lacked_but_never_change_one():
    lacking = fees()
    lacking["prices"] = [p for p in lacking["prices"] if p["kind"] != "booster"]
    history = [NewEvent("FeesSet", lacking)]
    today = date(2026, 3, 10)
    given(Fees(), history).when(SetFees(fees(), today=today)).then([NewEvent("FeesSet", fees())])
    changed = fees(treatment=9500)
    given(Fees(), history).when(SetFees(changed, today=today)).then_raises(Invalid, "lacked")
    stricter = {**fees(), "notice_hours": 48}
    given(Fees(), history).when(SetFees(stricter, today=today)).then_raises(Invalid, "lacked")


def test_the_first_price_list_may_start_in_the_past():
    given(Fees()).when(SetFees(fees(date(2025, 1, 1)), today=date(2026, 3, 10))).then_types(
        "FeesSet"
    )


def test_a_price_list_refuses_nonsense():
    bad = fees()
    bad["prices"][1]["amount"] = 0
    given(Fees()).when(SetFees(bad, today=date(2026, 1, 1))).then_raises(Invalid, "between")
    twice = fees()
    twice["prices"].append(dict(twice["prices"][1]))
    error = given(Fees()).when(SetFees(twice, today=date(2026, 1, 1))).then_raises(Invalid)
    assert error.field == "prices.4"
    fixed = fees(dna={"charge": "fixed", "amount": None})
    given(Fees()).when(SetFees(fixed, today=date(2026, 1, 1))).then_raises(Invalid, "amount")


def test_the_price_in_force_is_the_latest_started():
    events = [NewEvent("FeesSet", fees()), NewEvent("FeesSet", fees(date(2026, 3, 15), 9500))]
    prices = fold(Fees(), events)
    assert prices.in_force(date(2026, 3, 14)).fee("treatment", "video", "t1") == Money(9000)
    assert prices.in_force(date(2026, 3, 15)).fee("treatment", "video", "t1") == Money(9500)
    assert prices.in_force(date(2025, 12, 31)) is None


# -- charges from the diary -------------------------------------------------------------------
def test_an_attended_session_is_charged_at_the_fee_on_its_date():
    [event] = (
        given(Account()).when(ChargeSession(session(1), schedule())).then_types("ChargeRaised")
    )
    d = event.data
    assert (d["reason"], d["net"], d["vat"], d["payer"]) == (
        "attended",
        {"amount": 9000, "currency": GBP},
        {"amount": 0, "currency": GBP},
        "client",
    )
    assert d["charge_id"] == charge_id_for("s1") and d["session_date"] == date(2026, 3, 1)


def test_the_same_session_is_charged_once():
    history = []
    charged(history, ChargeSession(session(1), schedule()))
    given(Account(), history).when(ChargeSession(session(1), schedule())).then([])


def test_cancellations_and_lateness():
    s = schedule()
    late = session(2, "cancelled", cancelled_by="client", cancelled_at=at(8, 11))  # 23 h
    in_time = session(2, "cancelled", cancelled_by="client", cancelled_at=at(7, 10))  # 24 h
    by_therapist = session(2, "cancelled", cancelled_by="therapist", cancelled_at=at(8, 11))
    [event] = given(Account()).when(ChargeSession(late, s)).then_types("ChargeRaised")
    assert event.data["reason"] == "late_cancellation" and event.data["net"]["amount"] == 9000
    given(Account()).when(ChargeSession(in_time, s)).then([])
    given(Account()).when(ChargeSession(by_therapist, s)).then([])
    # a 48-hour policy makes the same cancellation late
    given(Account()).when(ChargeSession(in_time, schedule(notice_hours=48))).then_types(
        "ChargeRaised"
    )


def test_a_policy_of_no_late_charge_charges_nothing():
    s = schedule(late={"charge": "none"}, dna={"charge": "none"})
    late = session(2, "cancelled", cancelled_by="client", cancelled_at=at(8, 11))
    given(Account()).when(ChargeSession(late, s)).then([])
    given(Account()).when(ChargeSession(session(2, "missed"), s)).then([])


def test_no_price_list_or_no_price_is_refused_not_guessed():
    given(Account()).when(ChargeSession(session(1), None)).then_raises(Conflict, "no price list")
    odd = fees()
    odd["prices"] = [p for p in odd["prices"] if p["kind"] != "booster"]
    given(Account()).when(
        ChargeSession(session(1, kind="booster"), FeeSchedule.from_data(odd))
    ).then_raises(Conflict, "no fee")


def course_charges(history, prices, late_at=5, dna_at=9, count=16) -> list[dict]:
    """A weekly course: session `late_at` cancelled by the client 3 hours before, session
    `dna_at` not attended, the rest attended. Returns the charges raised."""
    out = []
    for n in range(1, count + 1):
        if n == late_at:
            s = session(n, "cancelled", cancelled_by="client")
            s = SessionOutcome(**{**s.__dict__, "cancelled_at": s.starts_at - timedelta(hours=3)})
        else:
            s = session(n, "missed" if n == dna_at else "attended")
        out += [e.data for e in charged(history, ChargeSession(s, prices(s)))]
    return out


def test_a_course_with_one_late_cancellation_and_one_dna():
    history = []
    charges = course_charges(history, lambda s: schedule())
    assert [(c["session_id"], c["reason"], c["net"]["amount"]) for c in charges] == [
        (f"s{n}", "attended", 9000) for n in range(1, 5)
    ] + [("s5", "late_cancellation", 9000)] + [(f"s{n}", "attended", 9000) for n in range(6, 9)] + [
        ("s9", "did_not_attend", 4500)
    ] + [(f"s{n}", "attended", 9000) for n in range(10, 17)]
    assert ledger.owed(ledger.fold(history)["client"]) == 15 * 9000 + 4500


def test_a_price_change_mid_course_charges_each_session_at_its_date():
    lists = fold(
        Fees(), [NewEvent("FeesSet", fees()), NewEvent("FeesSet", fees(date(2026, 4, 1), 9900))]
    )
    history = []
    charges = course_charges(history, lambda s: lists.in_force(s.starts_at.date()), count=8)
    amounts = {c["session_id"]: (c["net"]["amount"], c["price_list"]) for c in charges}
    assert amounts["s4"] == (9000, date(2026, 1, 1))  # 22 March
    assert amounts["s6"] == (9900, date(2026, 4, 1))  # 5 April
    assert amounts["s5"] == (9000, date(2026, 1, 1))  # late cancellation of 29 March


def insurer(funded=12, **kw):
    return NewEvent(
        "FundingSet",
        {
            "client_id": "c1",
            "payer": "insurer",
            "payer_name": "Acme Health",
            "payer_reference": "POL-1",
            "payer_email": "claims@acme.test",
            "funded_sessions": funded,
            "reduced_fee": kw.get("reduced_fee"),
            "reduced_fee_reason": kw.get("reason"),
        },
    )


def test_an_insurer_funds_12_of_16_and_the_client_pays_the_rest():
    history = [insurer(12)]
    charges = course_charges(history, lambda s: schedule(), late_at=0, dna_at=0)
    payers = [c["payer"] for c in charges]
    assert payers == ["funder"] * 12 + ["client"] * 4
    totals = ledger.fold(history)
    assert ledger.owed(totals["funder"]) == 12 * 9000
    assert ledger.owed(totals["client"]) == 4 * 9000


def test_late_and_dna_charges_are_the_clients_even_when_funded():
    history = [insurer(None)]
    charges = course_charges(history, lambda s: schedule(), count=10)
    assert {c["session_id"]: c["payer"] for c in charges}["s9"] == "client"
    assert {c["session_id"]: c["payer"] for c in charges}["s5"] == "client"
    assert sum(c["payer"] == "funder" for c in charges) == 8


def test_a_reduced_fee_with_its_reason():
    reduced = SetFunding("c1", "self", reduced_fee=Money(5000), reduced_fee_reason="hardship")
    [funding] = given(Account()).when(reduced).then_types("FundingSet")
    [charge] = (
        given(Account(), [funding])
        .when(ChargeSession(session(1), schedule()))
        .then_types("ChargeRaised")
    )
    assert charge.data["net"]["amount"] == 5000
    given(Account()).when(SetFunding("c1", "self", reduced_fee=Money(5000))).then_raises(
        Invalid, "reason"
    )
    given(Account()).when(SetFunding("c1", "insurer")).then_raises(Invalid, "name")


def test_vat_for_a_practice_that_is_not_exempt():
    s = schedule(vat={"exempt": False, "rate_basis_points": 2000, "number": "GB123456789"})
    [charge] = given(Account()).when(ChargeSession(session(1), s)).then_types("ChargeRaised")
    assert charge.data["vat"] == {"amount": 1800, "currency": GBP}
    assert "GB123456789" in s.vat_statement
    assert schedule().vat_statement == VAT_EXEMPT_STATEMENT
