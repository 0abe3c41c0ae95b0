"""Billing's writes over HTTP: each route parses, checks who may act, calls the Application and
maps the result. Money is for reception (admin) and the clinical lead only."""

from __future__ import annotations

from flask_smorest import Blueprint

from shared.auth import requires
from shared.domain import NotFound
from shared.events import new_id
from shared.web import context, request_metadata

from . import schemas as s
from .application import application
from .domain import (
    Addressee,
    IssueCreditNote,
    IssueInvoice,
    Money,
    RecordPayment,
    RecordRefund,
    SetFunding,
    WaiveCharge,
)
from .projections import Ledger, directory
from .queries import (
    accounts_blp,
    fees_blp,
    fees_out,
    funding_out,
    invoice_out,
    invoices_blp,
    payment_out,
)

payments_blp = Blueprint("payments", __name__, description="Payments and refunds")
BLUEPRINTS = [payments_blp]
MONEY = ("admin", "clinical_lead")


def client_or_404(client_id: str) -> dict:
    client = context().projection(directory()).reader("clients").find_one({"_id": client_id})
    if client is None:
        raise NotFound(f"no client {client_id}")
    return client


@fees_blp.route("/fees", methods=["PUT"])
@requires(*MONEY)
@fees_blp.arguments(s.FeesIn)
@fees_blp.response(200, s.FeesOut)
def set_fees(body):
    """Set the price list and policy in force from `effective_from` (today or later; only the
    first list may start earlier). A charge already raised keeps its fee."""
    app = application()
    return fees_out(app.set_fees(body, request_metadata()), app.today())


@accounts_blp.route("/clients/<client_id>/funding", methods=["PUT"])
@requires(*MONEY)
@accounts_blp.arguments(s.FundingIn)
@accounts_blp.response(200, s.FundingOut)
def set_funding(body, client_id):
    """Who pays for this client's sessions: the client (self), or an insurer or a referring
    organisation for `funded_sessions` sessions (then the client); a reduced fee needs a reason."""
    client_or_404(client_id)
    reduced = body.pop("reduced_fee")
    command = SetFunding(
        client_id=client_id,
        reduced_fee=Money(reduced["amount"], reduced["currency"]) if reduced else None,
        **body,
    )
    outcome = application().set_funding(command, request_metadata())
    return funding_out(client_id, outcome.state)


@accounts_blp.route("/charges/<charge_id>/waive", methods=["POST"])
@requires(*MONEY)
@accounts_blp.arguments(s.WaiveIn)
@accounts_blp.response(200, s.ChargeOut)
def waive(body, charge_id):
    """Waive an open charge with a reason (an invoiced one is corrected by a credit note)."""
    doc = context().projection(Ledger()).reader("charges").find_one({"_id": charge_id})
    if doc is None:
        raise NotFound(f"no charge {charge_id}")
    outcome = application().waive(
        doc["client_id"], WaiveCharge(charge_id, body["reason"]), request_metadata()
    )
    charge = outcome.state.charges[charge_id]
    return {**doc, "charge_id": charge_id, "status": charge.status, **_amounts(charge)}


def _amounts(charge) -> dict:
    return {"net": charge.net.wire(), "vat": charge.vat.wire(), "gross": charge.gross.wire()}


@invoices_blp.route("/invoices", methods=["POST"])
@requires(*MONEY)
@invoices_blp.arguments(s.InvoiceIn)
@invoices_blp.response(201, s.InvoiceOut)
def issue_invoice(body):
    """Invoice charges to their payer: the charges named, or every open charge of a period
    (`from`, `to`, `payer`). Numbered without gaps (INV-000001, ...); never edited after."""
    client = client_or_404(body["client_id"])
    app = application()
    invoice_id = new_id()
    name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p)
    schedule = app.price_list().in_force(app.today())
    statement = schedule.vat_statement if schedule else ""

    def make(number: str) -> IssueInvoice:
        return IssueInvoice(
            invoice_id=invoice_id,
            number=number,
            issued_on=app.today(),
            client=Addressee(name or body["client_id"], client.get("email")),
            vat_statement=statement,
            charge_ids=tuple(body["charge_ids"]) if "charge_ids" in body else None,
            period_from=body.get("from_"),
            period_to=body.get("to"),
            payer=body.get("payer"),
        )

    outcome = app.issue_invoice(body["client_id"], invoice_id, make, request_metadata())
    data = dict(outcome.events[0].data)
    return invoice_out(data, outcome.state, []), 201, {"Location": f"/invoices/{invoice_id}"}


@invoices_blp.route("/invoices/<invoice_id>/credit-note", methods=["POST"])
@requires(*MONEY)
@invoices_blp.arguments(s.CreditNoteIn)
@invoices_blp.response(201, s.CreditNoteOut)
def credit_note(body, invoice_id):
    """Correct an issued invoice: credit some of its lines, or all not credited yet. What
    was already paid on them is held as the payer's credit."""
    app = application()
    note_id = new_id()

    def make(number: str) -> IssueCreditNote:
        return IssueCreditNote(
            credit_note_id=note_id,
            number=number,
            invoice_id=invoice_id,
            issued_on=app.today(),
            reason=body["reason"],
            charge_ids=tuple(body["charge_ids"]) if "charge_ids" in body else None,
        )

    outcome = app.issue_credit_note(invoice_id, note_id, make, request_metadata())
    return dict(outcome.events[0].data), 201, {"Location": f"/invoices/{invoice_id}"}


@payments_blp.route("/payments", methods=["POST"])
@requires(*MONEY)
@payments_blp.arguments(s.PaymentIn)
@payments_blp.response(201, s.PaymentOut)
def record_payment(body):
    """Record money received (card terminal, bank transfer, insurer remittance, cash),
    against an invoice or the payer's oldest open invoices; more than is owed is held as
    credit. `kind: refund` pays credit held back."""
    client_id = body["client_id"]
    client_or_404(client_id)
    amount = Money(body["amount"], body["currency"])
    payment_id = new_id()
    # a refund is told like a payment (its id, the day it was paid), less the invoice
    said = (
        client_id,
        payment_id,
        body["payer"],
        body["method"],
        amount,
        body["received_on"],
        body["reference"],
    )
    if body["kind"] == "refund":
        command = RecordRefund(*said)
    else:
        command = RecordPayment(*said, body["invoice_id"])
    outcome = application().record_payment(command, request_metadata())
    out = payment_out(dict(outcome.events[0].data), body["kind"])
    return out, 201, {"Location": f"/clients/{client_id}/payments"}
