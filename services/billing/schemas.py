"""Request and response schemas (flask-smorest documents them in /openapi.json). Amounts
are whole pence (`amount`, an integer) with their `currency`: 90.00 GBP is
{"amount": 9000, "currency": "GBP"}."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.billing import CURRENCIES, FUNDERS, LATE_CHARGES, METHODS, PAYERS
from shared.contracts.common import MODALITIES
from shared.contracts.scheduling import SESSION_KINDS
from shared.inputs import Moment, day, free_text, line_text, safe_id, strict_integer

from .domain.money import MAX_PENCE

PENCE = {"description": f"whole pence (minor units), 1 to {MAX_PENCE}"}


def pence(**kwargs):
    return strict_integer(validate=validate.Range(1, MAX_PENCE), metadata=PENCE, **kwargs)


def one_of(values, **kwargs):
    return fields.String(validate=validate.OneOf(values), **kwargs)


class MoneyOut(Schema):
    amount = fields.Integer(metadata={"description": "pence"})
    currency = fields.String()


class MoneyIn(Schema):
    amount = pence(required=True)
    currency = one_of(CURRENCIES, required=True)


# -- fees ---------------------------------------------------------------------------------------
class PriceIn(Schema):
    kind = one_of(SESSION_KINDS, required=True)
    modality = one_of(MODALITIES, allow_none=True, load_default=None)
    therapist_id = safe_id(allow_none=True, load_default=None)
    amount = pence(required=True)


class LateChargeIn(Schema):
    charge = one_of(
        LATE_CHARGES,
        required=True,
        metadata={"description": "none, full_fee (the session's fee) or fixed (`amount`)"},
    )
    amount = pence(allow_none=True, load_default=None)


class VatIn(Schema):
    exempt = fields.Boolean(
        required=True,
        metadata={"description": "UK healthcare by registered professionals is exempt"},
    )
    rate_basis_points = strict_integer(
        validate=validate.Range(1, 10000), allow_none=True, load_default=None
    )
    number = line_text(20, allow_none=True, load_default=None)


NO_CHARGE = {"charge": "none", "amount": None}


class FeesIn(Schema):
    effective_from = day(required=True, metadata={"description": "practice date"})
    currency = one_of(CURRENCIES, load_default="GBP")
    prices = fields.List(
        fields.Nested(PriceIn), required=True, validate=validate.Length(min=1, max=200)
    )
    notice_hours = strict_integer(validate=validate.Range(0, 14 * 24), load_default=24)
    late_cancellation = fields.Nested(LateChargeIn, load_default=lambda: dict(NO_CHARGE))
    did_not_attend = fields.Nested(LateChargeIn, load_default=lambda: dict(NO_CHARGE))
    vat = fields.Nested(
        VatIn, load_default=lambda: {"exempt": True, "rate_basis_points": None, "number": None}
    )


class FeesOut(Schema):
    current = fields.Dict(allow_none=True, metadata={"description": "the list in force today"})
    schedules = fields.List(fields.Dict(), metadata={"description": "every list, oldest first"})


# -- funding ------------------------------------------------------------------------------------
class FundingIn(Schema):
    payer = one_of(FUNDERS, required=True)
    payer_name = line_text(200, allow_none=True, load_default=None)
    payer_reference = line_text(100, allow_none=True, load_default=None)
    payer_email = fields.Email(allow_none=True, load_default=None)
    funded_sessions = strict_integer(
        validate=validate.Range(1, 200),
        allow_none=True,
        load_default=None,
        metadata={"description": "sessions the payer funds; none: every attended session"},
    )
    reduced_fee = fields.Nested(MoneyIn, allow_none=True, load_default=None)
    reduced_fee_reason = line_text(500, allow_none=True, load_default=None)


class FundingOut(Schema):
    client_id = fields.String()
    payer = fields.String()
    payer_name = fields.String(allow_none=True)
    payer_reference = fields.String(allow_none=True)
    payer_email = fields.String(allow_none=True)
    funded_sessions = fields.Integer(allow_none=True)
    funded_used = fields.Integer()
    reduced_fee = fields.Nested(MoneyOut, allow_none=True)
    reduced_fee_reason = fields.String(allow_none=True)


# -- charges -------------------------------------------------------------------------------------
class WaiveIn(Schema):
    reason = free_text(1000, required=True)


class ChargeOut(Schema):
    charge_id = fields.String()
    session_id = fields.String()
    therapist_id = fields.String()
    reason = fields.String(metadata={"description": "attended, late_cancellation, did_not_attend"})
    kind = fields.String()
    modality = fields.String()
    starts_at = fields.AwareDateTime()
    session_date = fields.String()
    net = fields.Nested(MoneyOut)
    vat = fields.Nested(MoneyOut)
    gross = fields.Nested(MoneyOut)
    payer = fields.String()
    payer_name = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "open, invoiced, waived or credited"})
    invoice_id = fields.String(allow_none=True)
    invoice_number = fields.String(allow_none=True)
    price_list = fields.String()


class FundedSessionOut(Schema):
    session_id = fields.String()
    starts_at = fields.AwareDateTime()
    funded = fields.Boolean()


class UnpricedOut(Schema):
    session_id = fields.String()
    starts_at = fields.AwareDateTime()
    reason = fields.String(metadata={"description": "why it was not charged (no price)"})


class ChargesOut(Schema):
    client_id = fields.String()
    client_name = fields.String(metadata={"description": "contact data, for the page's title"})
    funded = fields.Boolean(metadata={"description": "a funder pays for sessions now"})
    charges = fields.List(fields.Nested(ChargeOut), metadata={"description": "staff with money"})
    sessions = fields.List(
        fields.Nested(FundedSessionOut), metadata={"description": "therapists: funded or not"}
    )
    unpriced = fields.List(
        fields.Nested(UnpricedOut),
        metadata={"description": "ended sessions the price list has no fee for (staff)"},
    )


# -- invoices -----------------------------------------------------------------------------------
class InvoiceIn(Schema):
    client_id = safe_id(required=True)
    charge_ids = fields.List(safe_id(), validate=validate.Length(min=1, max=200))
    from_ = day(data_key="from", metadata={"description": "first session date (period invoice)"})
    to = day(metadata={"description": "last session date, inclusive"})
    payer = one_of(PAYERS)

    @validates_schema
    def _one_way(self, data, **kwargs):
        if "charge_ids" in data and ({"from_", "to", "payer"} & set(data)):
            raise ValidationError("give the charges or a period, not both", "charge_ids")
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("must not be before from", "to")


class CreditNoteIn(Schema):
    reason = free_text(1000, required=True)
    charge_ids = fields.List(
        safe_id(),
        validate=validate.Length(min=1, max=200),
        metadata={"description": "lines to credit; all lines not credited yet if absent"},
    )


class LineOut(Schema):
    charge_id = fields.String()
    session_date = fields.String()
    description = fields.String()
    net = fields.Nested(MoneyOut)
    vat = fields.Nested(MoneyOut)
    gross = fields.Nested(MoneyOut)


class AddresseeOut(Schema):
    name = fields.String()
    email = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)


class CreditNoteOut(Schema):
    credit_note_id = fields.String()
    number = fields.String()
    invoice_id = fields.String()
    invoice_number = fields.String()
    issued_on = fields.String()
    charge_ids = fields.List(fields.String())
    amount = fields.Nested(MoneyOut)
    applied = fields.Nested(MoneyOut)
    allocations = fields.List(
        fields.Dict(), metadata={"description": "paid already: to the payer's other invoices"}
    )
    to_credit = fields.Nested(MoneyOut)
    reason = fields.String()


class InvoiceOut(Schema):
    invoice_id = fields.String()
    number = fields.String()
    client_id = fields.String()
    issued_on = fields.String()
    payer = fields.String()
    addressed_to = fields.Nested(AddresseeOut)
    period_from = fields.String()
    period_to = fields.String()
    lines = fields.List(fields.Nested(LineOut))
    net = fields.Nested(MoneyOut)
    vat = fields.Nested(MoneyOut)
    total = fields.Nested(MoneyOut)
    credit_applied = fields.Nested(MoneyOut)
    outstanding = fields.Nested(MoneyOut)
    vat_statement = fields.String()
    credit_notes = fields.List(fields.Nested(CreditNoteOut))


class InvoiceSummaryOut(Schema):
    invoice_id = fields.String()
    number = fields.String()
    client_id = fields.String()
    client_name = fields.String(allow_none=True)
    payer = fields.String()
    payer_name = fields.String(allow_none=True)
    issued_on = fields.String()
    total = fields.Nested(MoneyOut)
    outstanding = fields.Nested(MoneyOut)
    credited = fields.Nested(MoneyOut)
    age_days = fields.Integer()
    bucket = fields.String()


# -- payments -----------------------------------------------------------------------------------
class PaymentIn(Schema):
    client_id = safe_id(required=True)
    kind = one_of(
        ("payment", "refund"),
        load_default="payment",
        metadata={"description": "a refund is paid out of credit held"},
    )
    payer = one_of(PAYERS, load_default="client")
    method = one_of(METHODS, required=True)
    amount = pence(required=True)
    currency = one_of(CURRENCIES, load_default="GBP")
    received_on = day(required=True, metadata={"description": "the day the money moved"})
    reference = line_text(100, allow_none=True, load_default=None)
    invoice_id = safe_id(allow_none=True, load_default=None)

    @validates_schema
    def _refund(self, data, **kwargs):
        if data.get("kind") == "refund" and data.get("invoice_id"):
            raise ValidationError(
                "a refund is paid out of credit, not against an invoice", "invoice_id"
            )


class PaymentOut(Schema):
    payment_id = fields.String()
    kind = fields.String()
    client_id = fields.String()
    payer = fields.String()
    method = fields.String()
    amount = fields.Nested(MoneyOut)
    on = fields.String()
    reference = fields.String(allow_none=True)
    allocations = fields.List(fields.Dict())
    to_credit = fields.Nested(MoneyOut)


# -- balance and reports --------------------------------------------------------------------------
class AsOfQuery(Schema):
    as_of = Moment(metadata={"description": "the balance as it stood then (default: now)"})


class ReportQuery(Schema):
    as_of = day(metadata={"description": "age invoices as of this practice date (default today)"})


class IncomeQuery(Schema):
    from_ = fields.String(
        data_key="from",
        validate=validate.Regexp(r"^20\d\d-(0[1-9]|1[0-2])$", error="must be YYYY-MM"),
    )
    to = fields.String(
        validate=validate.Regexp(r"^20\d\d-(0[1-9]|1[0-2])$", error="must be YYYY-MM")
    )

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("must not be before from", "to")


class PayerBalance(Schema):
    charged = fields.Nested(MoneyOut)
    waived = fields.Nested(MoneyOut)
    credited = fields.Nested(MoneyOut)
    paid = fields.Nested(MoneyOut)
    refunded = fields.Nested(MoneyOut)
    credit = fields.Nested(MoneyOut, metadata={"description": "overpaid, held"})
    owed = fields.Nested(MoneyOut, metadata={"description": "negative: money held for them"})


class BalanceOut(Schema):
    client_id = fields.String()
    as_of = fields.AwareDateTime(allow_none=True)
    client = fields.Nested(PayerBalance)
    funder = fields.Nested(PayerBalance)


class StatementLine(Schema):
    at = fields.AwareDateTime(metadata={"description": "when it was recorded"})
    on = fields.Date(metadata={"description": "the session's, invoice's or payment's date"})
    what = fields.String()
    payer = fields.String()
    amount = fields.Nested(MoneyOut, metadata={"description": "change to what the payer owes"})
    owed = fields.Nested(MoneyOut, metadata={"description": "what the payer owes after it"})


class StatementOut(Schema):
    client_id = fields.String()
    client_name = fields.String()
    as_of = fields.AwareDateTime(allow_none=True)
    lines = fields.List(fields.Nested(StatementLine))


class AgedDebtOut(Schema):
    as_of = fields.String()
    currency = fields.String()
    buckets = fields.Dict(metadata={"description": "0-30, 31-60, 61-90, 90+ days: pence"})
    total = fields.Nested(MoneyOut)
    invoices = fields.List(fields.Nested(InvoiceSummaryOut))


class IncomeOut(Schema):
    currency = fields.String()
    months = fields.List(fields.Dict(), metadata={"description": "month, charged, received"})
    therapists = fields.List(fields.Dict(), metadata={"description": "month, therapist, charged"})
