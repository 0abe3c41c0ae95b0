"""Events of the billing service (topic rapport.billing). Amounts are whole pence with their
currency ({"amount": 4500, "currency": "GBP"}), never floats. Nothing clinical is billed:
a line says the kind of session and its date, never why the client comes."""

from marshmallow import Schema, fields, validate

from ..events import registry
from .common import MODALITIES, PERSONAL, one_of, optional, utc
from .scheduling import SESSION_KINDS

CURRENCIES = ("GBP", "EUR", "USD")
PAYERS = ("client", "funder")
FUNDERS = ("self", "insurer", "referrer")
CHARGE_REASONS = ("attended", "late_cancellation", "did_not_attend")
LATE_CHARGES = ("none", "full_fee", "fixed")
METHODS = ("card", "bank_transfer", "insurer_remittance", "cash")


class Money(Schema):
    amount = fields.Integer(required=True, strict=True)  # pence (minor units)
    currency = one_of(CURRENCIES, required=True)


class PriceV1(Schema):
    kind = one_of(SESSION_KINDS, required=True)
    modality = optional(one_of(MODALITIES))  # None: any modality
    therapist_id = optional(fields.String())  # None: every therapist
    amount = fields.Integer(required=True, strict=True)


class LateChargeV1(Schema):
    charge = one_of(LATE_CHARGES, required=True)
    amount = optional(fields.Integer(strict=True))  # for a fixed charge


class VatV1(Schema):
    exempt = fields.Boolean(required=True)
    rate_basis_points = optional(fields.Integer(validate=validate.Range(0, 10000)))
    number = optional(fields.String())


@registry.event("FeesSet", 1)
class FeesSetV1(Schema):
    """The practice's price list and policy from `effective_from` (practice date)."""

    effective_from = fields.Date(required=True)
    currency = one_of(CURRENCIES, required=True)
    prices = fields.List(fields.Nested(PriceV1), required=True)
    notice_hours = fields.Integer(required=True)
    late_cancellation = fields.Nested(LateChargeV1, required=True)
    did_not_attend = fields.Nested(LateChargeV1, required=True)
    vat = fields.Nested(VatV1, required=True)


@registry.event("FundingSet", 1)
class FundingSetV1(Schema):
    client_id = fields.String(required=True)
    payer = one_of(FUNDERS, required=True)
    payer_name = optional(fields.String())  # an insurer or referring organisation
    payer_reference = optional(fields.String(metadata=PERSONAL))  # identifies the client
    payer_email = optional(fields.String())
    funded_sessions = optional(fields.Integer())  # None: every attended session
    reduced_fee = optional(fields.Nested(Money))
    reduced_fee_reason = optional(fields.String(metadata=PERSONAL))


@registry.event("ChargeRaised", 1)
class ChargeRaisedV1(Schema):
    client_id = fields.String(required=True)
    charge_id = fields.String(required=True)
    session_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    reason = one_of(CHARGE_REASONS, required=True)
    kind = one_of(SESSION_KINDS, required=True)
    modality = one_of(MODALITIES, required=True)
    starts_at = utc(required=True)
    session_date = fields.Date(required=True)  # practice date: the fee in force on it
    net = fields.Nested(Money, required=True)
    vat = fields.Nested(Money, required=True)
    payer = one_of(PAYERS, required=True)
    payer_name = optional(fields.String())
    price_list = fields.Date(required=True)  # effective_from of the list it was priced by


@registry.event("ChargeWaived", 1)
class ChargeWaivedV1(Schema):
    client_id = fields.String(required=True)
    charge_id = fields.String(required=True)
    payer = one_of(PAYERS, required=True)
    amount = fields.Nested(Money, required=True)
    reason = fields.String(required=True, metadata=PERSONAL)


class Addressee(Schema):
    name = fields.String(required=True, metadata=PERSONAL)
    email = optional(fields.String(metadata=PERSONAL))
    reference = optional(fields.String(metadata=PERSONAL))


class InvoiceLine(Schema):
    charge_id = fields.String(required=True)
    session_date = fields.Date(required=True)
    description = fields.String(required=True)
    net = fields.Nested(Money, required=True)
    vat = fields.Nested(Money, required=True)
    gross = fields.Nested(Money, required=True)


@registry.event("InvoiceIssued", 1)
class InvoiceIssuedV1(Schema):
    """An issued invoice is never edited: a credit note corrects it."""

    client_id = fields.String(required=True)
    invoice_id = fields.String(required=True)
    number = fields.String(required=True)  # gap-free per practice: INV-000001, ...
    issued_on = fields.Date(required=True)
    payer = one_of(PAYERS, required=True)
    addressed_to = fields.Nested(Addressee, required=True)
    period_from = fields.Date(required=True)
    period_to = fields.Date(required=True)
    lines = fields.List(fields.Nested(InvoiceLine), required=True)
    net = fields.Nested(Money, required=True)
    vat = fields.Nested(Money, required=True)
    total = fields.Nested(Money, required=True)
    credit_applied = fields.Nested(Money, required=True)  # the payer's credit held, used
    vat_statement = fields.String(required=True)


class Allocation(Schema):
    invoice_id = fields.String(required=True)
    amount = fields.Nested(Money, required=True)


@registry.event("CreditNoteIssued", 1)
class CreditNoteIssuedV1(Schema):
    client_id = fields.String(required=True)
    credit_note_id = fields.String(required=True)
    number = fields.String(required=True)  # CN-000001, its own gap-free series
    invoice_id = fields.String(required=True)
    invoice_number = fields.String(required=True)
    payer = one_of(PAYERS, required=True)
    issued_on = fields.Date(required=True)
    charge_ids = fields.List(fields.String(), required=True)
    amount = fields.Nested(Money, required=True)
    applied = fields.Nested(Money, required=True)  # off what the invoice still owed
    # paid already on the credited lines: to the payer's other open invoices, then credit
    allocations = fields.List(fields.Nested(Allocation), required=True)
    to_credit = fields.Nested(Money, required=True)
    reason = fields.String(required=True, metadata=PERSONAL)


@registry.event("PaymentRecorded", 1)
class PaymentRecordedV1(Schema):
    client_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    payer = one_of(PAYERS, required=True)
    method = one_of(METHODS, required=True)
    amount = fields.Nested(Money, required=True)
    received_on = fields.Date(required=True)
    reference = optional(fields.String(metadata=PERSONAL))
    allocations = fields.List(fields.Nested(Allocation), required=True)
    to_credit = fields.Nested(Money, required=True)  # more than invoiced: held as credit


@registry.event("RefundRecorded", 1)
class RefundRecordedV1(Schema):
    client_id = fields.String(required=True)
    refund_id = fields.String(required=True)
    payer = one_of(PAYERS, required=True)
    method = one_of(METHODS, required=True)
    amount = fields.Nested(Money, required=True)
    paid_on = fields.Date(required=True)
    reference = optional(fields.String(metadata=PERSONAL))
