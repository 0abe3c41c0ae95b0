"""Read models of billing.

- billing_diary: the sessions of scheduling's topic, with what happened to them. A session
  that was attended, missed or cancelled is `pending` until the charge worker
  (workers.py) has decided its charge on the client's account (idempotently: one charge per
  session at most, with an id derived from the session's).
- billing_ledger: billing's own events as staff read them: per client the balance figures
  (`domain.ledger`, the same fold as "the balance as it stood on a date"), charges, invoices
  with what they still owe (aged debt), payments and refunds (income).
- the client directory (names for invoices and reports; the therapist of each client).
"""

from __future__ import annotations

from pymongo import IndexModel

from shared.directory import ClientDirectory
from shared.projections import Projection

from .domain import ledger

SESSION_FACTS = ("client_id", "therapist_id", "starts_at")


def _changed(event, status: str, **extra) -> dict:
    return {
        "$set": {
            **{k: event.data[k] for k in SESSION_FACTS},
            "status": status,
            "pending": True,
            "last_event_id": event.event_id,
            **extra,
        },
        "$inc": {"rev": 1},
    }


class Diary(Projection):
    service = "billing"
    name = "billing_diary"
    sources = ("scheduling",)
    batched = True
    # the charge worker rests on it (workers.py): woken by every batch of every billing
    # projection, its own charges' included, it looked for pending sessions some seven times
    # a second in the flows bench, twice a wake (issue 14)
    rings = ("billing_diary_bell",)
    # a charge waits for nobody: its many small batches queued the therapists' (Projection)
    linger = 0.5
    collections = {
        "sessions": [
            IndexModel("pending"),
            IndexModel("client_id"),
            IndexModel("unpriced.fees_version", sparse=True),
        ]
    }

    def on_SessionBooked(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    **{k: d[k] for k in SESSION_FACTS},
                    "kind": d["kind"],
                    "modality": d["modality"],
                    "course_id": d.get("course_id"),
                    "number": d.get("number"),
                },
                "$setOnInsert": {"status": "booked", "pending": False, "rev": 0},
            },
            upsert=True,
        )

    def on_SessionRescheduled(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {"$set": {**{k: d[k] for k in SESSION_FACTS}, "modality": d["modality"]}},
            upsert=True,
        )

    def on_SessionCancelled(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            _changed(event, "cancelled", cancelled_by=d["by"], cancelled_at=event.occurred_at),
            upsert=True,
        )

    def on_SessionAttended(self, event, view):
        self._ended(event, view, "attended")

    def on_SessionMissed(self, event, view):
        self._ended(event, view, "missed")

    def _ended(self, event, view, status):
        view["sessions"].update_one(
            {"_id": event.data["session_id"]},
            _changed(event, status, kind=event.data["kind"]),
            upsert=True,
        )


def _pence(money: dict) -> int:
    return money["amount"]


class Ledger(Projection):
    service = "billing"
    name = "billing_ledger"
    sources = ("billing",)
    # a batch's writes go together, and each account's totals are read once per batch and
    # written once (`_totals`): a charge was three round trips of its own inside the batch's
    # transaction (issue 14)
    batched = True
    collections = {
        "accounts": [],
        "charges": [IndexModel("client_id"), IndexModel("month"), IndexModel("session_id")],
        "invoices": [IndexModel("client_id"), IndexModel("outstanding")],
        "payments": [IndexModel("client_id"), IndexModel("month")],
    }

    def handle(self, event, view):
        super().handle(event, view)
        if event.type in ledger.EVENTS:
            self._totals(event, view)

    def _totals(self, event, view):
        """The client's balance figures move with the event: the events of a batch are
        gathered per client, and after its last one every client's totals are read in one
        query and folded forward in order (`_fold_totals`)."""
        client_id = event.data["client_id"]
        view.memo.setdefault(("ledger", "events"), {}).setdefault(client_id, []).append(event)
        view.together("ledger totals", client_id, lambda ids: self._fold_totals(ids, view))

    @staticmethod
    def _fold_totals(client_ids: list[str], view) -> None:
        events = view.memo.pop(("ledger", "events"))
        accounts = view["accounts"]
        found = {
            d["_id"]: d.get("totals")
            for d in accounts.find({"_id": {"$in": client_ids}}, {"totals": 1})
        }
        for client_id in client_ids:
            totals = found.get(client_id) or ledger.empty()
            for event in events.pop(client_id):
                totals = ledger.apply(totals, event)
            accounts.update_one({"_id": client_id}, {"$set": {"totals": totals}}, upsert=True)

    def on_FundingSet(self, event, view):
        d = event.data
        funding = {k: d.get(k) for k in ("payer", "payer_name", "funded_sessions")}
        view["accounts"].update_one(
            {"_id": d["client_id"]}, {"$set": {"funding": funding}}, upsert=True
        )

    def on_ChargeRaised(self, event, view):
        d = event.data
        view["charges"].update_one(
            {"_id": d["charge_id"]},
            {
                "$set": {
                    **{
                        k: d[k]
                        for k in (
                            "client_id",
                            "session_id",
                            "therapist_id",
                            "reason",
                            "kind",
                            "modality",
                            "starts_at",
                            "payer",
                            "payer_name",
                        )
                    },
                    "session_date": d["session_date"].isoformat(),
                    "month": d["session_date"].isoformat()[:7],
                    "net": _pence(d["net"]),
                    "vat": _pence(d["vat"]),
                    "gross": _pence(d["net"]) + _pence(d["vat"]),
                    "currency": d["net"]["currency"],
                    "price_list": d["price_list"].isoformat(),
                    "status": "open",
                    "invoice_id": None,
                    "invoice_number": None,
                }
            },
            upsert=True,
        )

    def on_ChargeWaived(self, event, view):
        d = event.data
        view["charges"].update_one(
            {"_id": d["charge_id"]}, {"$set": {"status": "waived", "waived_reason": d["reason"]}}
        )

    def on_InvoiceIssued(self, event, view):
        d = event.data
        for line in d["lines"]:
            view["charges"].update_one(
                {"_id": line["charge_id"]},
                {
                    "$set": {
                        "status": "invoiced",
                        "invoice_id": d["invoice_id"],
                        "invoice_number": d["number"],
                    }
                },
            )
        view["invoices"].update_one(
            {"_id": d["invoice_id"]},
            {
                "$set": {
                    "client_id": d["client_id"],
                    "number": d["number"],
                    "payer": d["payer"],
                    "payer_name": d["addressed_to"].get("name") if d["payer"] == "funder" else None,
                    "issued_on": d["issued_on"].isoformat(),
                    "currency": d["total"]["currency"],
                    "total": _pence(d["total"]),
                    "outstanding": _pence(d["total"]) - _pence(d["credit_applied"]),
                    "credited": 0,
                }
            },
            upsert=True,
        )

    def on_CreditNoteIssued(self, event, view):
        d = event.data
        for charge_id in d["charge_ids"]:
            view["charges"].update_one({"_id": charge_id}, {"$set": {"status": "credited"}})
        view["invoices"].update_one(
            {"_id": d["invoice_id"]},
            {"$inc": {"outstanding": -_pence(d["applied"]), "credited": _pence(d["amount"])}},
        )
        self._allocated(view, d["allocations"])

    def on_PaymentRecorded(self, event, view):
        d = event.data
        self._allocated(view, d["allocations"])
        self._money_moved(view, d["payment_id"], "payment", d, d["received_on"])

    def on_RefundRecorded(self, event, view):
        d = event.data
        self._money_moved(view, d["refund_id"], "refund", d, d["paid_on"])

    @staticmethod
    def _allocated(view, allocations) -> None:
        for a in allocations:
            view["invoices"].update_one(
                {"_id": a["invoice_id"]}, {"$inc": {"outstanding": -_pence(a["amount"])}}
            )

    @staticmethod
    def _money_moved(view, _id, kind, d, on) -> None:
        view["payments"].update_one(
            {"_id": _id},
            {
                "$set": {
                    "kind": kind,
                    "client_id": d["client_id"],
                    "payer": d["payer"],
                    "method": d["method"],
                    "amount": _pence(d["amount"]),
                    "currency": d["amount"]["currency"],
                    "on": on.isoformat(),
                    "month": on.isoformat()[:7],
                    "reference": d.get("reference"),
                    "to_credit": _pence(d.get("to_credit") or {"amount": 0}),
                }
            },
            upsert=True,
        )


def directory() -> ClientDirectory:
    return ClientDirectory("billing")


def all_projections() -> list[Projection]:
    return [directory(), Diary(), Ledger()]
