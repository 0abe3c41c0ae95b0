"""Billing's reads: the price list, a client's charges, invoices, payments and balance, an
invoice (JSON or PDF), aged debt and income. Reception and the clinical lead see money; a
therapist sees, for their own clients only, whether a session is funded."""

from __future__ import annotations

from datetime import date

from flask import Response, current_app, request
from flask_smorest import Blueprint

from shared.auth import current_identity, requires
from shared.directory import check_client_access
from shared.domain import NotFound
from shared.subject_access import PartOut, documents, events_about, part
from shared.web import context

from .. import schemas as s
from ..application import application
from ..domain import PriceList, ledger
from ..domain.money import Money
from ..domain.state import FUNDER, AccountState
from ..projections import Diary, Ledger, directory

fees_blp = Blueprint("fees", __name__, description="The practice's price list and policy")
accounts_blp = Blueprint(
    "accounts", __name__, description="A client's funding, charges, payments and balance"
)
invoices_blp = Blueprint("invoices", __name__, description="Invoices and credit notes")
reports_blp = Blueprint("reports", __name__, description="Aged debt and income")
BLUEPRINTS = [fees_blp, accounts_blp, invoices_blp, reports_blp]
MONEY = ("admin", "clinical_lead")
BUCKETS = (("0-30", 30), ("31-60", 60), ("61-90", 90), ("90+", None))


def _ledger(collection: str):
    return context().projection(Ledger()).reader(collection)


def _client(client_id: str) -> dict | None:
    return context().projection(directory()).reader("clients").find_one({"_id": client_id})


def _money(pence: int, currency: str) -> dict:
    return {"amount": pence, "currency": currency}


# -- shaping ----------------------------------------------------------------------------------
def fees_out(prices: PriceList, today: date) -> dict:
    current = prices.in_force(today)
    raw = [_jsonable(r) for r in prices.raw]
    chosen = next(
        (r for r in raw if current and r["effective_from"] == current.effective_from.isoformat()),
        None,
    )
    return {"current": chosen, "schedules": raw}


def _jsonable(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.items()}


def funding_out(client_id: str, state: AccountState) -> dict:
    f = state.funding
    return {
        "client_id": client_id,
        "payer": f.payer,
        "payer_name": f.payer_name,
        "payer_reference": f.payer_reference,
        "payer_email": f.payer_email,
        "funded_sessions": f.funded_sessions,
        "funded_used": state.funded_used(),
        "reduced_fee": f.reduced_fee.wire() if f.reduced_fee else None,
        "reduced_fee_reason": f.reduced_fee_reason,
    }


def invoice_out(data: dict, state: AccountState, notes: list[dict]) -> dict:
    invoice = state.invoices[data["invoice_id"]]
    out = _jsonable(data)
    out["lines"] = [_jsonable(line) for line in data["lines"]]
    out["outstanding"] = invoice.outstanding.wire()
    out["credit_notes"] = [_jsonable(n) for n in notes]
    return out


def payment_out(data: dict, kind: str) -> dict:
    return {
        "payment_id": data.get("payment_id") or data.get("refund_id"),
        "kind": kind,
        "client_id": data["client_id"],
        "payer": data["payer"],
        "method": data["method"],
        "amount": data["amount"],
        "on": (data.get("received_on") or data.get("paid_on")).isoformat(),
        "reference": data.get("reference"),
        "allocations": data.get("allocations", []),
        "to_credit": data.get("to_credit") or Money.zero(data["amount"]["currency"]).wire(),
    }


def _charge_out(doc: dict) -> dict:
    c = doc["currency"]
    return {
        **doc,
        "charge_id": doc["_id"],
        "net": _money(doc["net"], c),
        "vat": _money(doc["vat"], c),
        "gross": _money(doc["gross"], c),
    }


# -- routes -------------------------------------------------------------------------------------
@fees_blp.route("/fees", methods=["GET"])
@requires(*MONEY)
@fees_blp.response(200, s.FeesOut)
def get_fees():
    """The price list in force today and every list, oldest first."""
    app = application()
    return fees_out(app.price_list(), app.today())


@accounts_blp.route("/clients/<client_id>/charges", methods=["GET"])
@requires(*MONEY, "therapist")
@accounts_blp.response(200, s.ChargesOut)
def charges(client_id):
    """Reception and the lead: every charge with its money. A therapist (their own clients
    only): whether each charged session was funded, and whether a funder pays now; no money."""
    identity = current_identity()
    client = _client(client_id)
    check_client_access(identity, client)
    if client is None:
        raise NotFound(f"no client {client_id}")
    name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p)
    docs = list(_ledger("charges").find({"client_id": client_id}).sort("starts_at", 1))
    account = _ledger("accounts").find_one({"_id": client_id}) or {}
    funding = account.get("funding") or {}
    funded_now = funding.get("payer") not in (None, "self")
    if funded_now and funding.get("funded_sessions") is not None:
        used = sum(1 for d in docs if d["payer"] == FUNDER and d["status"] != "waived")
        funded_now = used < funding["funded_sessions"]
    if identity.role == "therapist":
        sessions = [
            {
                "session_id": d["session_id"],
                "starts_at": d["starts_at"],
                "funded": d["payer"] == FUNDER,
            }
            for d in docs
        ]
        return {
            "client_id": client_id,
            "client_name": name,
            "funded": funded_now,
            "sessions": sessions,
        }
    charges = [_charge_out(d) for d in docs]
    unpriced = [
        {"session_id": d["_id"], "starts_at": d["starts_at"], "reason": d["unpriced"]["reason"]}
        for d in context()
        .projection(Diary())
        .reader("sessions")
        .find({"client_id": client_id, "unpriced": {"$type": "object"}})
        .sort("starts_at", 1)
    ]
    return {
        "client_id": client_id,
        "client_name": name,
        "funded": funded_now,
        "charges": charges,
        "unpriced": unpriced,
    }


@accounts_blp.route("/clients/<client_id>/funding", methods=["GET"])
@requires(*MONEY)
@accounts_blp.response(200, s.FundingOut)
def get_funding(client_id):
    """The client's funding arrangement (self-pay when none was set)."""
    if _client(client_id) is None:
        raise NotFound(f"no client {client_id}")
    app = application()
    return funding_out(client_id, app.accounts.state(f"account-{client_id}")[0])


@accounts_blp.route("/clients/<client_id>/invoices", methods=["GET"])
@requires(*MONEY)
@accounts_blp.response(200, s.InvoiceSummaryOut(many=True))
def client_invoices(client_id):
    """The client's invoices, newest first, with what each still owes."""
    docs = _ledger("invoices").find({"client_id": client_id}).sort("number", -1)
    return [_summary(d, None) for d in docs]


@accounts_blp.route("/clients/<client_id>/payments", methods=["GET"])
@requires(*MONEY)
@accounts_blp.response(200, s.PaymentOut(many=True))
def client_payments(client_id):
    """Payments and refunds, newest first."""
    docs = _ledger("payments").find({"client_id": client_id}).sort("on", -1)
    out = []
    for d in docs:
        c = d["currency"]
        out.append(
            {
                **d,
                "payment_id": d["_id"],
                "amount": _money(d["amount"], c),
                "to_credit": _money(d.get("to_credit", 0), c),
                "allocations": [],
            }
        )
    return out


@accounts_blp.route("/clients/<client_id>/balance", methods=["GET"])
@requires(*MONEY)
@accounts_blp.arguments(s.AsOfQuery, location="query")
@accounts_blp.response(200, s.BalanceOut)
def balance(args, client_id):
    """What the client and their funder owe (negative: money held for them). With `as_of`,
    the balance as it stood then, from the account's events recorded by that moment."""
    if _client(client_id) is None:
        raise NotFound(f"no client {client_id}")
    as_of = args.get("as_of")
    if as_of is None:
        totals = (_ledger("accounts").find_one({"_id": client_id}) or {}).get("totals")
        totals = totals or ledger.empty()
    else:
        totals = ledger.fold(application().account(client_id, until=as_of))
    return {"client_id": client_id, "as_of": as_of, **ledger.balance(totals)}


@accounts_blp.route("/clients/<client_id>/statement", methods=["GET"])
@requires(*MONEY)
@accounts_blp.arguments(s.AsOfQuery, location="query")
@accounts_blp.response(200, s.StatementOut)
def statement(args, client_id):
    """The account line by line from its events (charges, waivers, invoices, credit notes,
    payments, refunds), each with what the payer owes after it; up to `as_of` if given."""
    client = _client(client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    as_of = args.get("as_of")
    name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p)
    lines = ledger.statement(application().account(client_id, until=as_of))
    return {"client_id": client_id, "client_name": name, "as_of": as_of, "lines": lines}


def _summary(doc: dict, as_of: date | None) -> dict:
    c = doc["currency"]
    out = {
        **doc,
        "invoice_id": doc["_id"],
        "total": _money(doc["total"], c),
        "outstanding": _money(doc["outstanding"], c),
        "credited": _money(doc.get("credited", 0), c),
    }
    if as_of is not None:
        age = (as_of - date.fromisoformat(doc["issued_on"])).days
        out["age_days"] = age
        out["bucket"] = next(name for name, limit in BUCKETS if limit is None or age <= limit)
    return out


@reports_blp.route("/reports/aged-debt", methods=["GET"])
@requires(*MONEY)
@reports_blp.arguments(s.ReportQuery, location="query")
@reports_blp.response(200, s.AgedDebtOut)
def aged_debt(args):
    """What is owed on issued invoices, by days since issue: 0-30, 31-60, 61-90, 90+."""
    as_of = args.get("as_of") or application().today()
    docs = _ledger("invoices").find({"outstanding": {"$gt": 0}})
    rows = [_summary(d, as_of) for d in docs if d["issued_on"] <= as_of.isoformat()]
    names = _names({r["client_id"] for r in rows})
    currency = rows[0]["currency"] if rows else "GBP"
    buckets = {name: 0 for name, _ in BUCKETS}
    for r in rows:
        r["client_name"] = names.get(r["client_id"])
        buckets[r["bucket"]] += r["outstanding"]["amount"]
    rows.sort(key=lambda r: (-r["age_days"], r["number"]))
    return {
        "as_of": as_of.isoformat(),
        "currency": currency,
        "buckets": buckets,
        "total": _money(sum(buckets.values()), currency),
        "invoices": rows,
    }


def _names(client_ids: set) -> dict:
    if not client_ids:
        return {}
    docs = (
        context()
        .projection(directory())
        .reader("clients")
        .find({"_id": {"$in": sorted(client_ids)}}, {"given_name": 1, "family_name": 1})
    )
    return {
        d["_id"]: " ".join(p for p in (d.get("given_name"), d.get("family_name")) if p)
        for d in docs
    }


@reports_blp.route("/reports/income", methods=["GET"])
@requires(*MONEY)
@reports_blp.arguments(s.IncomeQuery, location="query")
@reports_blp.response(200, s.IncomeOut)
def income(args):
    """By month: what was charged for sessions of that month (less waivers and credit notes)
    and what was received (payments less refunds); and what each therapist's sessions were
    charged, by month."""
    months: dict[str, dict] = {}
    therapists: dict[tuple, int] = {}
    span = {k: v for k, v in (("$gte", args.get("from_")), ("$lte", args.get("to"))) if v}
    month_filter = {"month": span} if span else {}
    currency = "GBP"
    for d in _ledger("charges").find(month_filter):
        currency = d["currency"]
        earned = 0 if d["status"] in ("waived", "credited") else d["gross"]
        months.setdefault(d["month"], {"charged": 0, "received": 0})["charged"] += earned
        key = (d["month"], d["therapist_id"])
        therapists[key] = therapists.get(key, 0) + earned
    for d in _ledger("payments").find(month_filter):
        sign = -1 if d["kind"] == "refund" else 1
        months.setdefault(d["month"], {"charged": 0, "received": 0})["received"] += (
            sign * d["amount"]
        )
    return {
        "currency": currency,
        "months": [
            {
                "month": m,
                "charged": _money(v["charged"], currency),
                "received": _money(v["received"], currency),
            }
            for m, v in sorted(months.items())
        ],
        "therapists": [
            {"month": m, "therapist_id": t, "charged": _money(v, currency)}
            for (m, t), v in sorted(therapists.items())
        ],
    }


@invoices_blp.route("/invoices/<invoice_id>", methods=["GET"])
@requires(*MONEY, "service")  # notifications fetches the PDF to e-mail it to the payer
@invoices_blp.response(200, s.InvoiceOut)
@invoices_blp.alt_response(200, content_type="application/pdf", description="the invoice as a PDF")
def get_invoice(invoice_id):
    """The invoice as issued, with what it still owes and its credit notes. With
    `Accept: application/pdf`, the PDF to send to the payer (notifications e-mails it)."""
    data, state, notes = application().invoice(invoice_id)
    out = invoice_out(data, state, notes)
    if (
        request.accept_mimetypes.best_match(["application/json", "application/pdf"])
        == "application/pdf"
    ):
        from .invoice_pdf import render_invoice

        settings = current_app.config["RAPPORT_SETTINGS"]
        pdf = render_invoice(out, practice=settings.practice_name)
        return Response(
            pdf,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{data["number"]}.pdf"'},
        )
    return out


@accounts_blp.route("/clients/<client_id>/subject-access", methods=["GET"])
@requires("service")
@accounts_blp.response(200, PartOut)
def subject_access(client_id):
    """Billing's part of the client's subject access export (records' `GET
    /clients/{id}/export` gathers it): their funding and totals, every charge, invoice and
    payment, and every billing event about them."""
    found = {"accounts": {"_id": client_id}, **{n: {"client_id": client_id} for n in KINDS}}
    held = {name: documents(_ledger(name), query) for name, query in found.items()}
    return part("billing", client_id, held, events_about(context().store, client_id))


KINDS = ("charges", "invoices", "payments")
