"""What an account owes, worked out from its events one at a time: the projection of
balances and "the balance as it stood on a date" (the same events up to that date) both
fold this one function, so they agree to the penny."""

from __future__ import annotations

from collections.abc import Iterable

from .money import Money
from .state import PAYERS

FIGURES = ("charged", "waived", "credited", "paid", "refunded", "credit")


def empty(currency: str = "GBP") -> dict:
    return {payer: dict.fromkeys(FIGURES, 0) for payer in PAYERS} | {"currency": currency}


def _neg(amount: dict) -> dict:
    return {"amount": -amount["amount"], "currency": amount["currency"]}


# each event type: the (payer, figure, amount) it adds to
MOVES = {
    "ChargeRaised": lambda d: [
        (d["payer"], "charged", d["net"]),
        (d["payer"], "charged", d["vat"]),
    ],
    "ChargeWaived": lambda d: [(d["payer"], "waived", d["amount"])],
    "CreditNoteIssued": lambda d: [
        (d["payer"], "credited", d["amount"]),
        (d["payer"], "credit", d["to_credit"]),
    ],
    "InvoiceIssued": lambda d: [(d["payer"], "credit", _neg(d["credit_applied"]))],
    "PaymentRecorded": lambda d: [
        (d["payer"], "paid", d["amount"]),
        (d["payer"], "credit", d["to_credit"]),
    ],
    "RefundRecorded": lambda d: [
        (d["payer"], "refunded", d["amount"]),
        (d["payer"], "credit", _neg(d["amount"])),
    ],
}
EVENTS = tuple(MOVES)


def apply(totals: dict, event) -> dict:
    """The totals after one event (a new dict; pence as integers)."""
    out = {p: dict(totals[p]) for p in PAYERS} | {"currency": totals["currency"]}
    for payer, figure, amount in MOVES.get(event.type, lambda d: [])(event.data):
        out["currency"] = amount["currency"]
        out[payer][figure] += amount["amount"]
    return out


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


def _what(event) -> str:
    d = event.data
    kind = {"assessment": "Assessment session", "treatment": "Therapy session"}.get(
        d.get("kind"), "Follow-up session"
    )
    return {
        "ChargeRaised": lambda: {
            "attended": kind,
            "late_cancellation": f"Late cancellation: {kind.lower()}",
            "did_not_attend": f"Non-attendance: {kind.lower()}",
        }[d["reason"]],
        "ChargeWaived": lambda: "Charge waived",
        "InvoiceIssued": lambda: f"Invoice {d['number']}",
        "CreditNoteIssued": lambda: f"Credit note {d['number']} on {d['invoice_number']}",
        "PaymentRecorded": lambda: f"Payment ({d['method'].replace('_', ' ')})",
        "RefundRecorded": lambda: f"Refund ({d['method'].replace('_', ' ')})",
    }[event.type]()


def _on(event):
    d = event.data
    return d.get("session_date") or d.get("issued_on") or d.get("received_on") or d.get("paid_on")


def statement(events: Iterable) -> list[dict]:
    """The account line by line, oldest first: what each event did to what each payer owes,
    and the running figure after it (an invoice moves nothing: it asks for what is owed)."""
    totals, lines = empty(), []
    for event in events:
        if event.type not in MOVES:
            continue
        after = apply(totals, event)
        payer = event.data["payer"]
        change = owed(after[payer]) - owed(totals[payer])
        currency = after["currency"]
        lines.append(
            {
                "at": event.occurred_at,
                "on": _on(event),
                "what": _what(event),
                "payer": payer,
                "amount": Money(change, currency).wire(),
                "owed": Money(owed(after[payer]), currency).wire(),
            }
        )
        totals = after
    return lines
