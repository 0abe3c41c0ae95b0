"""The one place that talks to billing: an issued invoice's PDF, fetched at send time with a
short-lived service token (fetch.py: `GET /invoices/{id}`, `Accept: application/pdf`), so the book
holds no copy of it and the payer gets what billing renders from the invoice as issued."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from .channels import TransientError
from .fetch import ServiceCall


class InvoiceGone(Exception):
    """Billing knows no such invoice: nothing to send."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"

    def __repr__(self) -> str:  # the bytes stay out of tracebacks and logs
        return f"Attachment({self.filename!r}, {len(self.content)} bytes)"


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class BillingInvoices:
    def __init__(self, base_url: str, token_secret: str, timeout: float = 10.0):
        self.billing = ServiceCall("billing", base_url, token_secret, timeout)

    def pdf(self, invoice_id: str, number: str) -> Attachment:
        response = self.billing.call(
            "GET",
            f"/invoices/{invoice_id}",
            headers={"Accept": "application/pdf"},
            gone=(404,),
            gone_error=InvoiceGone,
            what="invoice",
        )
        if not response.content.startswith(b"%PDF"):
            raise TransientError("billing sent something other than a PDF")
        return Attachment(f"{_SAFE_NAME.sub('_', number)}.pdf", response.content)


_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(value: dict) -> str:
    """Whole pence as the payer reads them: {"amount": 16500, "currency": "GBP"} -> £165.00."""
    pence = value["amount"]
    sign, pence = ("-", -pence) if pence < 0 else ("", pence)
    symbol = _SYMBOLS.get(value["currency"], value["currency"] + " ")
    return f"{sign}{symbol}{pence // 100:,}.{pence % 100:02d}"


def invoice_terms(context: dict, config) -> dict:
    """What the invoice e-mail says: the total, what is due after credit, by when, and how."""
    issued = date.fromisoformat(context["issued_on"])
    due = {
        **context["total"],
        "amount": context["total"]["amount"] - context["credit_applied"]["amount"],
    }
    return {
        "total_text": money(context["total"]),
        "credit_text": money(context["credit_applied"])
        if context["credit_applied"]["amount"]
        else None,
        "due_text": money(due),
        "issued_text": issued.strftime("%-d %B %Y"),
        "due_on_text": (issued + timedelta(days=config.payment_terms_days)).strftime("%-d %B %Y"),
        "how_to_pay": config.payment_instructions,
    }
