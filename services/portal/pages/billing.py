"""Billing pages: a client's charges, invoices, payments and balance (reception and the
clinical lead; a therapist sees only whether each session was funded), and the practice's
billing dashboard (income by month and therapist, outstanding by age, CSV). Nothing clinical
is shown or sent here: billing's answers hold session kinds and dates, never notes. Every
answer is read defensively (`_dict`, `_rows`, `_pence_of`): an odd answer shows as nothing,
never as a 500."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import Response, redirect, render_template, request, url_for

from ..backend import BackendError, backend
from ..security import current_user, signed_in
from . import blueprint
from .common import form_flash_ok, items
from .diary import therapists
from .measures import safe_id

MONEY = ("admin", "clinical_lead")
METHODS = (
    ("card", "Card terminal"),
    ("bank_transfer", "Bank transfer"),
    ("insurer_remittance", "Insurer remittance"),
    ("cash", "Cash"),
)
FUNDERS = (("self", "Self-pay"), ("insurer", "Insurer"), ("referrer", "Referring organisation"))
BUCKETS = ("0-30", "31-60", "61-90", "90+")


def _pence_of(value) -> int | None:
    amount = value.get("amount") if isinstance(value, dict) else None
    return amount if isinstance(amount, int) and not isinstance(amount, bool) else None


def _dict(answer) -> dict:
    return answer if isinstance(answer, dict) else {}


def _rows(answer, key: str | None = None) -> list[dict]:
    """The dicts of a list answer (or of `answer[key]`)."""
    found = _dict(answer).get(key) if key else items(answer)
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def money(value) -> str:
    """{"amount": 9000, "currency": "GBP"} as £90.00 (pence, never a float)."""
    pence = _pence_of(value)
    if pence is None:
        return "—"
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(value.get("currency"), "")
    whole, rest = divmod(abs(pence), 100)
    return f"{'-' if pence < 0 else ''}{symbol}{whole:,}.{rest:02d}"


blueprint.add_app_template_filter(money, "money")


def pence(field: str, *, required: bool = True) -> int | None:
    """Pounds as typed ("90", "90.5", "£1,250.00") as whole pence; anything else is refused
    beside the field as the services refuse input (422), never turned into a float."""
    raw = (request.form.get(field) or "").strip().replace("£", "").replace(",", "")
    if not raw and not required:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = None
    # bounded before int(): "1e999999999" is a finite Decimal whose int has a billion digits
    if (
        amount is None
        or not amount.is_finite()
        or amount.as_tuple().exponent < -2
        or abs(amount) >= 10**9
    ):
        reason = "must be an amount in pounds, such as 90 or 90.50"
        raise BackendError(
            422, f"{field}: {reason}", "portal", [{"field": field, "reason": reason}]
        )
    return int(amount * 100)


# -- a client's billing ---------------------------------------------------------------------------
@blueprint.get("/clients/<client_id>/billing")
@signed_in("admin", "clinical_lead", "therapist")
def client_billing(client_id):
    api = backend()
    answer = _dict(api.get("billing", f"/clients/{client_id}/charges"))
    view = {
        "client_name": answer.get("client_name"),
        "funded": answer.get("funded") is True,
        "charges": _rows(answer, "charges"),
        "sessions": _rows(answer, "sessions"),
        "unpriced": _rows(answer, "unpriced"),
    }
    if current_user().role == "therapist":
        return render_template(
            "billing_client.html", client_id=client_id, view=view, money_view=False
        )
    balance = _dict(api.get("billing", f"/clients/{client_id}/balance"))
    invoices = _rows(api.get("billing", f"/clients/{client_id}/invoices"))
    funding = _dict(api.get("billing", f"/clients/{client_id}/funding"))
    reduced = _pence_of(funding.get("reduced_fee"))
    statement, statement_error = api.try_get("billing", f"/clients/{client_id}/statement")
    return render_template(
        "billing_client.html",
        client_id=client_id,
        view=view,
        money_view=True,
        balance={k: _dict(balance.get(k)) for k in ("client", "funder")},
        invoices=invoices,
        payable=[i for i in invoices if (_pence_of(i.get("outstanding")) or 0) > 0],
        payments=_rows(api.get("billing", f"/clients/{client_id}/payments")),
        funding=funding,
        funded_now=funding.get("payer") not in (None, "self"),
        funder_charged=bool(_pence_of(_dict(balance.get("funder")).get("charged"))),
        reduced_fee=f"{reduced / 100:.2f}" if reduced else "",
        open_payers=sorted(
            {str(c.get("payer")) for c in view["charges"] if c.get("status") == "open"}
        ),
        methods=METHODS,
        funders=FUNDERS,
        statement=_rows(statement, "lines"),
        statement_error=statement_error,
        today=date.today().isoformat(),
    )


def _back_to(client_id: str, anchor: str = ""):
    return redirect(url_for("pages.client_billing", client_id=client_id) + anchor)


@blueprint.post("/clients/<client_id>/billing/payments")
@signed_in(*MONEY)
def billing_payment(client_id):
    f = request.form
    body = {
        "client_id": client_id,
        "kind": f.get("kind") or "payment",
        "payer": f.get("payer") or "client",
        "method": f.get("method", ""),
        "amount": pence("amount"),
        "currency": "GBP",
        "received_on": f.get("received_on", ""),
        "reference": f.get("reference", "").strip() or None,
        "invoice_id": f.get("invoice_id") or None,
    }
    answer = _dict(backend().post("billing", "/payments", body))
    what = "Refund" if body["kind"] == "refund" else "Payment"
    held = _pence_of(answer.get("to_credit"))
    form_flash_ok(
        f"{what} of {money(answer.get('amount'))} recorded."
        + (f" {money(answer['to_credit'])} is held as credit." if held else "")
    )
    return _back_to(client_id, "#balance")


@blueprint.post("/clients/<client_id>/billing/invoices")
@signed_in(*MONEY)
def billing_invoice(client_id):
    body = {"client_id": client_id}
    for name in ("payer", "from", "to"):
        if request.form.get(name):
            body[name] = request.form[name]
    answer = _dict(backend().post("billing", "/invoices", body))
    form_flash_ok(f"Invoice {answer.get('number')} issued for {money(answer.get('total'))}.")
    return _back_to(client_id, "#invoices")


@blueprint.post("/clients/<client_id>/billing/charges/<charge_id>/waive")
@signed_in(*MONEY)
def billing_waive(client_id, charge_id):
    reason = request.form.get("reason", "").strip()
    backend().post("billing", f"/charges/{charge_id}/waive", {"reason": reason})
    form_flash_ok("Charge waived.")
    return _back_to(client_id, "#charges")


@blueprint.post("/clients/<client_id>/billing/invoices/<invoice_id>/credit-note")
@signed_in(*MONEY)
def billing_credit_note(client_id, invoice_id):
    """Credit what the invoice has not had credited yet (an issued invoice is never edited)."""
    reason = request.form.get("reason", "").strip()
    answer = _dict(
        backend().post("billing", f"/invoices/{invoice_id}/credit-note", {"reason": reason})
    )
    form_flash_ok(f"Credit note {answer.get('number')} issued for {money(answer.get('amount'))}.")
    return _back_to(client_id, "#invoices")


@blueprint.post("/clients/<client_id>/billing/funding")
@signed_in(*MONEY)
def billing_funding(client_id):
    f = request.form
    reduced = pence("reduced_fee", required=False)
    funded = (f.get("funded_sessions") or "").strip()
    body = {
        "payer": f.get("payer", ""),
        "payer_name": f.get("payer_name", "").strip() or None,
        "payer_reference": f.get("payer_reference", "").strip() or None,
        "payer_email": f.get("payer_email", "").strip() or None,
        # not a number: sent as typed, and billing refuses it beside the field
        "funded_sessions": int(funded) if funded.isascii() and funded.isdigit() else funded or None,
        "reduced_fee": {"amount": reduced, "currency": "GBP"} if reduced is not None else None,
        "reduced_fee_reason": f.get("reduced_fee_reason", "").strip() or None,
    }
    backend().put("billing", f"/clients/{client_id}/funding", body)
    form_flash_ok("Funding saved.")
    return _back_to(client_id, "#funding")


@blueprint.get("/invoices/<invoice_id>.pdf")
@signed_in(*MONEY)
def invoice_pdf(invoice_id):
    # not an id (a newline in it would break the Content-Disposition header): not found
    invoice_id = safe_id(invoice_id)
    body, _ = backend().get_file("billing", f"/invoices/{invoice_id}", accept="application/pdf")
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{invoice_id}.pdf"'},
    )


# -- the practice's billing dashboard --------------------------------------------------------
def _dashboard_data() -> dict:
    api = backend()
    income = _dict(api.get("billing", "/reports/income"))
    aged = _dict(api.get("billing", "/reports/aged-debt"))
    names = {t.get("therapist_id"): t.get("name") for t in therapists() if isinstance(t, dict)}
    rows = [
        {**r, "therapist": names.get(r.get("therapist_id")) or r.get("therapist_id")}
        for r in _rows(income, "therapists")
    ]
    buckets = _dict(aged.get("buckets"))
    currency = aged.get("currency") if isinstance(aged.get("currency"), str) else "GBP"
    return {
        "months": _rows(income, "months"),
        "by_therapist": rows,
        "aged": aged,
        "aged_invoices": _rows(aged, "invoices"),
        "buckets": [(b, {"amount": buckets.get(b), "currency": currency}) for b in BUCKETS],
    }


@blueprint.get("/billing")
@signed_in(*MONEY)
def billing_dashboard():
    return render_template("billing.html", **_dashboard_data())


@blueprint.get("/billing.csv")
@signed_in(*MONEY)
def billing_csv():
    """Income by month and by therapist and the aged debt, in pounds, one table after another."""
    data = _dashboard_data()
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "month", "therapist", "charged", "received"])
    for m in data["months"]:
        charged, received = _pounds(m.get("charged")), _pounds(m.get("received"))
        w.writerow(["income", m.get("month"), "", charged, received])
    for r in data["by_therapist"]:
        w.writerow(["by therapist", r.get("month"), r["therapist"], _pounds(r.get("charged")), ""])
    w.writerow([])
    w.writerow(["aged debt", "invoice", "client", "payer", "issued", "days", "outstanding"])
    for i in data["aged_invoices"]:
        w.writerow(
            [
                i.get("bucket"),
                i.get("number"),
                i.get("client_name") or i.get("client_id"),
                i.get("payer_name") or i.get("payer"),
                i.get("issued_on"),
                i.get("age_days"),
                _pounds(i.get("outstanding")),
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="billing.csv"'},
    )


def _pounds(value) -> str:
    pence_ = _pence_of(value)
    if pence_ is None:
        return ""
    sign = "-" if pence_ < 0 else ""
    return f"{sign}{abs(pence_) // 100}.{abs(pence_) % 100:02d}"
