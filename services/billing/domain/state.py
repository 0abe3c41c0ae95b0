"""A client's account: one stream (`account-<client_id>`) holding the funding arrangement
and every charge, invoice, credit note, payment and refund, so a decision about one (is this
charge already invoiced? how many funded sessions are left? how much credit is held?) is
made on all of them at one version. `evolve` goes through one table of event types."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from .money import Money

CLIENT, FUNDER = "client", "funder"
PAYERS = (CLIENT, FUNDER)
OPEN, INVOICED, WAIVED, CREDITED = "open", "invoiced", "waived", "credited"


@dataclass(frozen=True)
class Funding:
    payer: str = "self"  # self, insurer or referrer
    payer_name: str | None = None
    payer_reference: str | None = None
    payer_email: str | None = None
    funded_sessions: int | None = None  # None: every attended session is funded
    reduced_fee: Money | None = None  # what the client pays per session instead of the list
    reduced_fee_reason: str | None = None

    @property
    def funded(self) -> bool:
        return self.payer != "self"


@dataclass(frozen=True)
class Charge:
    charge_id: str
    session_id: str
    therapist_id: str
    reason: str  # attended, late_cancellation, did_not_attend
    kind: str
    modality: str
    session_date: date
    net: Money
    vat: Money
    payer: str  # client or funder
    payer_name: str | None = None
    status: str = OPEN
    invoice_id: str | None = None

    @property
    def gross(self) -> Money:
        return self.net + self.vat


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    number: str
    payer: str
    issued_on: date
    charge_ids: tuple[str, ...]
    total: Money
    settled: Money  # paid, credit applied and credited
    credited_ids: tuple[str, ...] = ()

    @property
    def outstanding(self) -> Money:
        return self.total - self.settled


@dataclass(frozen=True)
class AccountState:
    client_id: str | None = None
    currency: str | None = None
    funding: Funding = field(default_factory=Funding)
    charges: dict = field(default_factory=dict)  # charge_id -> Charge
    by_session: dict = field(default_factory=dict)  # session_id -> charge_id
    invoices: dict = field(default_factory=dict)  # invoice_id -> Invoice
    credit: dict = field(default_factory=dict)  # payer -> Money held (overpaid)
    payments: frozenset = frozenset()  # payment and refund ids

    def credit_of(self, payer: str) -> Money:
        return self.credit.get(payer) or Money.zero(self.currency or "GBP")

    def funded_used(self) -> int:
        """Sessions billed to the current funder and not waived."""
        name = self.funding.payer_name
        return sum(
            1
            for c in self.charges.values()
            if c.payer == FUNDER and c.payer_name == name and c.status != WAIVED
        )

    def open_invoices(self, payer: str) -> list[Invoice]:
        return sorted(
            (i for i in self.invoices.values() if i.payer == payer and i.outstanding.positive),
            key=lambda i: (i.issued_on, i.number),
        )


# -- evolve -------------------------------------------------------------------------------
def _money(d) -> Money:
    return Money.of(d)


def _funding_set(s: AccountState, d: dict) -> AccountState:
    reduced = d.get("reduced_fee")
    return replace(
        s,
        client_id=d["client_id"],
        funding=Funding(
            payer=d["payer"],
            payer_name=d.get("payer_name"),
            payer_reference=d.get("payer_reference"),
            payer_email=d.get("payer_email"),
            funded_sessions=d.get("funded_sessions"),
            reduced_fee=_money(reduced) if reduced else None,
            reduced_fee_reason=d.get("reduced_fee_reason"),
        ),
    )


def _charge_raised(s: AccountState, d: dict) -> AccountState:
    charge = Charge(
        charge_id=d["charge_id"],
        session_id=d["session_id"],
        therapist_id=d["therapist_id"],
        reason=d["reason"],
        kind=d["kind"],
        modality=d["modality"],
        session_date=d["session_date"],
        net=_money(d["net"]),
        vat=_money(d["vat"]),
        payer=d["payer"],
        payer_name=d.get("payer_name"),
    )
    return replace(
        s,
        client_id=d["client_id"],
        currency=s.currency or charge.net.currency,
        charges={**s.charges, charge.charge_id: charge},
        by_session={**s.by_session, charge.session_id: charge.charge_id},
    )


def _charge_waived(s: AccountState, d: dict) -> AccountState:
    charge = replace(s.charges[d["charge_id"]], status=WAIVED)
    return replace(s, charges={**s.charges, charge.charge_id: charge})


def _invoice_issued(s: AccountState, d: dict) -> AccountState:
    ids = tuple(line["charge_id"] for line in d["lines"])
    charges = dict(s.charges)
    for charge_id in ids:
        charges[charge_id] = replace(
            charges[charge_id], status=INVOICED, invoice_id=d["invoice_id"]
        )
    applied = _money(d["credit_applied"])
    invoice = Invoice(
        d["invoice_id"], d["number"], d["payer"], d["issued_on"], ids, _money(d["total"]), applied
    )
    credit = {**s.credit, d["payer"]: s.credit_of(d["payer"]) - applied}
    return replace(
        s, charges=charges, invoices={**s.invoices, invoice.invoice_id: invoice}, credit=credit
    )


def _credit_note_issued(s: AccountState, d: dict) -> AccountState:
    invoice = s.invoices[d["invoice_id"]]
    charges = dict(s.charges)
    for charge_id in d["charge_ids"]:
        charges[charge_id] = replace(charges[charge_id], status=CREDITED)
    invoice = replace(
        invoice,
        settled=invoice.settled + _money(d["applied"]),
        credited_ids=invoice.credited_ids + tuple(d["charge_ids"]),
    )
    invoices = _settle({**s.invoices, invoice.invoice_id: invoice}, d.get("allocations") or [])
    payer = invoice.payer
    credit = {**s.credit, payer: s.credit_of(payer) + _money(d["to_credit"])}
    return replace(s, charges=charges, invoices=invoices, credit=credit)


def _settle(invoices: dict, allocations: list[dict]) -> dict:
    out = dict(invoices)
    for a in allocations:
        invoice = out[a["invoice_id"]]
        out[a["invoice_id"]] = replace(invoice, settled=invoice.settled + _money(a["amount"]))
    return out


def _payment_recorded(s: AccountState, d: dict) -> AccountState:
    invoices = _settle(s.invoices, d["allocations"])
    payer = d["payer"]
    amount = _money(d["amount"])
    return replace(
        s,
        client_id=d["client_id"],
        currency=s.currency or amount.currency,
        invoices=invoices,
        credit={**s.credit, payer: s.credit_of(payer) + _money(d["to_credit"])},
        payments=s.payments | {d["payment_id"]},
    )


def _refund_recorded(s: AccountState, d: dict) -> AccountState:
    payer = d["payer"]
    return replace(
        s,
        credit={**s.credit, payer: s.credit_of(payer) - _money(d["amount"])},
        payments=s.payments | {d["refund_id"]},
    )


EVOLVE = {
    "FundingSet": _funding_set,
    "ChargeRaised": _charge_raised,
    "ChargeWaived": _charge_waived,
    "InvoiceIssued": _invoice_issued,
    "CreditNoteIssued": _credit_note_issued,
    "PaymentRecorded": _payment_recorded,
    "RefundRecorded": _refund_recorded,
}


def evolve(state: AccountState, event) -> AccountState:
    apply = EVOLVE.get(event.type)
    return apply(state, dict(event.data)) if apply else state
