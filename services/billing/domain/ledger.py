"""What an account owes, worked out from its events one at a time: the projection of
balances and "the balance as it stood on a date" (the same events up to that date) both
fold this one function, so they agree to the penny."""

from __future__ import annotations

from collections.abc import Iterable

from .money import Money
from .state import PAYERS

FIGURES = ("charged", "waived", "credited", "paid", "refunded", "credit")
EVENTS = (
    "ChargeRaised",
    "ChargeWaived",
    "CreditNoteIssued",
    "InvoiceIssued",
    "PaymentRecorded",
    "RefundRecorded",
)


def empty(currency: str = "GBP") -> dict:
    return {payer: dict.fromkeys(FIGURES, 0) for payer in PAYERS} | {"currency": currency}


def _add(totals: dict, payer: str, figure: str, amount: dict) -> None:
    totals["currency"] = amount["currency"]
    totals[payer][figure] += amount["amount"]


def apply(totals: dict, event) -> dict:
    """The totals after one event (a new dict; pence as integers)."""
    out = {p: dict(totals[p]) for p in PAYERS} | {"currency": totals["currency"]}
    d = event.data
    step = {
        "ChargeRaised": lambda: (
            _add(out, d["payer"], "charged", d["net"]),
            _add(out, d["payer"], "charged", d["vat"]),
        ),
        "ChargeWaived": lambda: _add(out, d["payer"], "waived", d["amount"]),
        "CreditNoteIssued": lambda: (
            _add(out, _payer_of(d), "credited", d["amount"]),
            _add(out, _payer_of(d), "credit", d["to_credit"]),
        ),
        "InvoiceIssued": lambda: _add(out, d["payer"], "credit", _neg(d["credit_applied"])),
        "PaymentRecorded": lambda: (
            _add(out, d["payer"], "paid", d["amount"]),
            _add(out, d["payer"], "credit", d["to_credit"]),
        ),
        "RefundRecorded": lambda: (
            _add(out, d["payer"], "refunded", d["amount"]),
            _add(out, d["payer"], "credit", _neg(d["amount"])),
        ),
    }.get(event.type)
    if step is not None:
        step()
    return out


def _neg(amount: dict) -> dict:
    return {"amount": -amount["amount"], "currency": amount["currency"]}


def _payer_of(d: dict) -> str:
    return d.get("payer") or "client"


def fold(events: Iterable) -> dict:
    totals = empty()
    for event in events:
        totals = apply(totals, event)
    return totals


def owed(figures: dict) -> int:
    """Pence still owed by one payer (negative: money held for them)."""
    return (
        figures["charged"]
        - figures["waived"]
        - figures["credited"]
        - figures["paid"]
        + figures["refunded"]
    )


def balance(totals: dict) -> dict:
    """The reader's view: per payer, each figure and what is owed, as money with currency."""
    currency = totals["currency"]

    def money(pence: int) -> dict:
        return Money(pence, currency).wire()

    return {
        payer: {
            **{k: money(v) for k, v in totals[payer].items()},
            "owed": money(owed(totals[payer])),
        }
        for payer in PAYERS
    }
