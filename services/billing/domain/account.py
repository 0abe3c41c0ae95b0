"""The account decider: funding, waivers, invoices, credit notes, payments and refunds (the
charges themselves are decided in `charging`). Each command is decided on the whole account
at one version, so two invoices for the same charges, or a refund of credit already refunded,
cannot both pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from . import charging
from .money import MAX_PENCE, Money, total
from .state import FUNDER, OPEN, WAIVED, AccountState, Charge, Invoice, evolve

KIND_WORDS = {
    "assessment": "Assessment session",
    "treatment": "Therapy session",
    "booster": "Follow-up session",
}
REASON_WORDS = {
    "attended": "",
    "late_cancellation": "Late cancellation: ",
    "did_not_attend": "Non-attendance: ",
}
METHODS = ("card", "bank_transfer", "insurer_remittance", "cash")


@dataclass(frozen=True)
class SetFunding:
    client_id: str
    payer: str  # self, insurer, referrer
    payer_name: str | None = None
    payer_reference: str | None = None
    payer_email: str | None = None
    funded_sessions: int | None = None
    reduced_fee: Money | None = None
    reduced_fee_reason: str | None = None


@dataclass(frozen=True)
class WaiveCharge:
    charge_id: str
    reason: str


@dataclass(frozen=True)
class Addressee:
    name: str
    email: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class IssueInvoice:
    invoice_id: str
    number: str  # taken from the practice's gap-free sequence by the application
    issued_on: date
    client: Addressee  # the client's name and e-mail, for an invoice to the client
    vat_statement: str
    charge_ids: tuple[str, ...] | None = None
    period_from: date | None = None
    period_to: date | None = None
    payer: str | None = None


@dataclass(frozen=True)
class IssueCreditNote:
    credit_note_id: str
    number: str
    invoice_id: str
    issued_on: date
    reason: str
    charge_ids: tuple[str, ...] | None = None  # None: every line not credited yet


@dataclass(frozen=True)
class RecordPayment:
    client_id: str
    payment_id: str
    payer: str
    method: str
    amount: Money
    received_on: date
    reference: str | None = None
    invoice_id: str | None = None


@dataclass(frozen=True)
class RecordRefund:
    client_id: str
    refund_id: str
    payer: str
    method: str
    amount: Money
    paid_on: date
    reference: str | None = None


# -- decisions ------------------------------------------------------------------------------
def _set_funding(s: AccountState, c: SetFunding) -> list[NewEvent]:
    if c.payer == "self":
        if c.payer_name or c.payer_reference or c.funded_sessions is not None:
            raise Invalid("a self-paying client has no payer or funded sessions", field="payer")
    elif not c.payer_name:
        raise Invalid(f"name the {c.payer} who pays", field="payer_name")
    if c.reduced_fee is not None:
        _amount_ok(c.reduced_fee, "reduced_fee.amount")
        if not c.reduced_fee_reason:
            raise Invalid("a reduced fee needs its reason", field="reduced_fee_reason")
        if s.currency and c.reduced_fee.currency != s.currency:
            raise Invalid(f"the account is in {s.currency}", field="reduced_fee.currency")
    elif c.reduced_fee_reason:
        raise Invalid("a reason goes with a reduced fee", field="reduced_fee_reason")
    data = {
        "client_id": c.client_id,
        "payer": c.payer,
        "payer_name": c.payer_name,
        "payer_reference": c.payer_reference,
        "payer_email": c.payer_email,
        "funded_sessions": c.funded_sessions,
        "reduced_fee": c.reduced_fee.wire() if c.reduced_fee else None,
        "reduced_fee_reason": c.reduced_fee_reason,
    }
    return [NewEvent("FundingSet", data)]


def _charge(s: AccountState, charge_id: str, field: str = "charge_id") -> Charge:
    charge = s.charges.get(charge_id)
    if charge is None:
        raise NotFound(f"no charge {charge_id} on this account")
    return charge


def _waive(s: AccountState, c: WaiveCharge) -> list[NewEvent]:
    charge = _charge(s, c.charge_id)
    if charge.status == WAIVED:
        raise Conflict("the charge is already waived", code="already_waived")
    if charge.status != OPEN:
        invoice = s.invoices[charge.invoice_id]
        raise Conflict(
            f"the charge is on invoice {invoice.number}; issue a credit note instead",
            code="invoiced",
        )
    return [
        NewEvent(
            "ChargeWaived",
            {
                "client_id": s.client_id,
                "charge_id": c.charge_id,
                "payer": charge.payer,
                "amount": charge.gross.wire(),
                "reason": c.reason,
            },
        )
    ]


def _chosen(s: AccountState, c: IssueInvoice) -> list[Charge]:
    if c.charge_ids is not None:
        chosen = []
        for i, charge_id in enumerate(c.charge_ids):
            charge = s.charges.get(charge_id)
            if charge is None:
                raise Invalid(f"no charge {charge_id} for this client", field=f"charge_ids.{i}")
            if charge.status != OPEN:
                where = s.invoices[charge.invoice_id].number if charge.invoice_id else None
                raise Conflict(
                    f"charge {charge_id} is {charge.status}"
                    + (f" (invoice {where})" if where else ""),
                    code=f"charge_{charge.status}",
                )
            chosen.append(charge)
        if len({ch.charge_id for ch in chosen}) != len(chosen):
            raise Invalid("a charge is listed twice", field="charge_ids")
        return chosen
    return [
        ch
        for ch in s.charges.values()
        if ch.status == OPEN
        and (c.period_from is None or ch.session_date >= c.period_from)
        and (c.period_to is None or ch.session_date <= c.period_to)
        and (c.payer is None or ch.payer == c.payer)
    ]


def _line(charge: Charge) -> dict:
    words = f"{REASON_WORDS[charge.reason]}{KIND_WORDS[charge.kind]}"
    return {
        "charge_id": charge.charge_id,
        "session_date": charge.session_date,
        "description": words,
        "net": charge.net.wire(),
        "vat": charge.vat.wire(),
        "gross": charge.gross.wire(),
    }


def _invoice(s: AccountState, c: IssueInvoice) -> list[NewEvent]:
    chosen = sorted(_chosen(s, c), key=lambda ch: (ch.session_date, ch.charge_id))
    if not chosen:
        raise Conflict(
            "there is nothing to invoice: no open charges match", code="nothing_to_invoice"
        )
    payers = {(ch.payer, ch.payer_name) for ch in chosen}
    if len(payers) > 1:
        raise Invalid(
            "these charges have different payers: invoice each payer on its own",
            field="payer" if c.charge_ids is None else "charge_ids",
        )
    payer, payer_name = payers.pop()
    currency = chosen[0].net.currency
    gross = total((ch.gross for ch in chosen), currency)
    applied = s.credit_of(payer).min(gross) if s.credit_of(payer).positive else Money.zero(currency)
    if payer == FUNDER:
        f = s.funding
        to = {"name": payer_name, "email": f.payer_email, "reference": f.payer_reference}
    else:
        to = {"name": c.client.name, "email": c.client.email, "reference": None}
    dates = [ch.session_date for ch in chosen]
    data = {
        "client_id": s.client_id,
        "invoice_id": c.invoice_id,
        "number": c.number,
        "issued_on": c.issued_on,
        "payer": payer,
        "addressed_to": to,
        "period_from": c.period_from or min(dates),
        "period_to": c.period_to or max(dates),
        "lines": [_line(ch) for ch in chosen],
        "net": total((ch.net for ch in chosen), currency).wire(),
        "vat": total((ch.vat for ch in chosen), currency).wire(),
        "total": gross.wire(),
        "credit_applied": applied.wire(),
        "vat_statement": c.vat_statement,
    }
    return [NewEvent("InvoiceIssued", data)]


def _credit_note(s: AccountState, c: IssueCreditNote) -> list[NewEvent]:
    invoice = s.invoices.get(c.invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {c.invoice_id}")
    left = [i for i in invoice.charge_ids if i not in invoice.credited_ids]
    ids = list(c.charge_ids) if c.charge_ids is not None else left
    for i, charge_id in enumerate(ids):
        if charge_id not in invoice.charge_ids:
            raise Invalid(
                f"charge {charge_id} is not on invoice {invoice.number}", field=f"charge_ids.{i}"
            )
        if charge_id not in left:
            raise Conflict(f"charge {charge_id} is already credited", code="already_credited")
    if not ids:
        raise Conflict(
            f"invoice {invoice.number} is already credited in full", code="already_credited"
        )
    amount = total((s.charges[i].gross for i in ids), invoice.total.currency)
    applied = amount.min(invoice.outstanding)
    # what was paid on the credited lines settles the payer's other open invoices first
    others = [i for i in s.open_invoices(invoice.payer) if i.invoice_id != invoice.invoice_id]
    allocations, left = _allocate(amount - applied, others)
    data = {
        "client_id": s.client_id,
        "credit_note_id": c.credit_note_id,
        "number": c.number,
        "invoice_id": c.invoice_id,
        "invoice_number": invoice.number,
        "payer": invoice.payer,
        "issued_on": c.issued_on,
        "charge_ids": ids,
        "amount": amount.wire(),
        "applied": applied.wire(),  # off what the invoice still owed
        "allocations": allocations,  # paid already: to the payer's other open invoices
        "to_credit": left.wire(),  # and what is left held as the payer's credit
        "reason": c.reason,
    }
    return [NewEvent("CreditNoteIssued", data)]


def _allocate(amount: Money, invoices: list[Invoice]) -> tuple[list[dict], Money]:
    """Spread money over open invoices in order: (allocations, what is left)."""
    left, allocations = amount, []
    for invoice in invoices:
        share = left.min(invoice.outstanding)
        if share.positive:
            allocations.append({"invoice_id": invoice.invoice_id, "amount": share.wire()})
            left = left - share
    return allocations, left


def _amount_ok(amount: Money, field: str) -> None:
    if not 0 < amount.pence <= MAX_PENCE:
        raise Invalid(f"must be between 1 and {MAX_PENCE} pence", field=field)


def _payer_ok(s: AccountState, payer: str) -> None:
    if payer == FUNDER and not (
        s.funding.funded or any(i.payer == FUNDER for i in s.invoices.values())
    ):
        raise Invalid("this client has no funder", field="payer")


def _payment(s: AccountState, c: RecordPayment) -> list[NewEvent]:
    if c.payment_id in s.payments:
        return []
    _amount_ok(c.amount, "amount")
    if s.currency and c.amount.currency != s.currency:
        raise Invalid(f"the account is in {s.currency}", field="currency")
    _payer_ok(s, c.payer)
    targets = s.open_invoices(c.payer)
    if c.invoice_id is not None:
        invoice = s.invoices.get(c.invoice_id)
        if invoice is None:
            raise Invalid(f"no invoice {c.invoice_id} for this client", field="invoice_id")
        if invoice.payer != c.payer:
            raise Invalid(
                f"invoice {invoice.number} is addressed to the {invoice.payer}", field="invoice_id"
            )
        targets = [invoice] + [i for i in targets if i.invoice_id != invoice.invoice_id]
    allocations, left = _allocate(c.amount, targets)
    data = {
        "client_id": c.client_id,
        "payment_id": c.payment_id,
        "payer": c.payer,
        "method": c.method,
        "amount": c.amount.wire(),
        "received_on": c.received_on,
        "reference": c.reference,
        "allocations": allocations,
        "to_credit": left.wire(),  # more than was invoiced: held as credit, never lost
    }
    return [NewEvent("PaymentRecorded", data)]


def _refund(s: AccountState, c: RecordRefund) -> list[NewEvent]:
    if c.refund_id in s.payments:
        return []
    _amount_ok(c.amount, "amount")
    held = s.credit_of(c.payer)
    if held.currency != c.amount.currency:
        raise Invalid(f"the account is in {held.currency}", field="currency")
    if c.amount.pence > held.pence:
        raise Invalid(f"a refund is paid out of credit held; {held.text()} is held", field="amount")
    data = {
        "client_id": c.client_id,
        "refund_id": c.refund_id,
        "payer": c.payer,
        "method": c.method,
        "amount": c.amount.wire(),
        "paid_on": c.paid_on,
        "reference": c.reference,
    }
    return [NewEvent("RefundRecorded", data)]


DECIDE = {
    SetFunding: _set_funding,
    charging.ChargeSession: charging.decide_charge,
    WaiveCharge: _waive,
    IssueInvoice: _invoice,
    IssueCreditNote: _credit_note,
    RecordPayment: _payment,
    RecordRefund: _refund,
}


class Account:
    def initial_state(self) -> AccountState:
        return AccountState()

    def evolve(self, state: AccountState, event) -> AccountState:
        return evolve(state, event)

    def decide(self, state: AccountState, command) -> list[NewEvent]:
        return DECIDE[type(command)](state, command)


def needs_account(state: AccountState, client_id: str) -> None:
    """Commands other than funding and charges act on an account that has something on it."""
    if state.client_id is None:
        raise NotFound(f"no billing account for client {client_id}")
