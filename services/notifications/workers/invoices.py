"""The one place that talks to billing: an issued invoice's PDF, fetched at send time with a
short-lived service token (`GET /invoices/{id}`, `Accept: application/pdf`), so the book
holds no copy of it and the payer gets what billing renders from the invoice as issued."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import requests

from shared.auth import service_token

from .channels import PermanentError, TransientError


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
        self.base_url, self.secret, self.timeout = base_url.rstrip("/"), token_secret, timeout
        self.http = requests.Session()

    def pdf(self, invoice_id: str, number: str) -> Attachment:
        token = service_token(self.secret, "notifications", ttl_seconds=60)
        try:
            response = self.http.get(
                f"{self.base_url}/invoices/{invoice_id}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise TransientError(f"billing unreachable: {type(err).__name__}") from err
        if response.status_code == 404:
            raise InvoiceGone("billing answered 404")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"billing answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"billing refused the invoice request: {response.status_code}")
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
