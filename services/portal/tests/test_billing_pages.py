"""The billing pages against a stand-in for the services: reception's client page and its
payment form (pounds typed, pence sent; a refusal beside the field with the input kept), the
therapist's funded-only view, and the practice dashboard's CSV."""

from .conftest import csrf_of
from .test_pages import THERAPISTS

GBP = "GBP"


def m(pence):
    return {"amount": pence, "currency": GBP}


def figures(owed):
    zero = m(0)
    return {
        "charged": m(owed),
        "waived": zero,
        "credited": zero,
        "paid": zero,
        "refunded": zero,
        "credit": zero,
        "owed": m(owed),
    }


CHARGE = {
    "charge_id": "ch-1",
    "session_id": "s-1",
    "therapist_id": "t-1",
    "reason": "did_not_attend",
    "kind": "treatment",
    "modality": "video",
    "starts_at": "2026-03-02T10:00:00+00:00",
    "session_date": "2026-03-02",
    "net": m(4500),
    "vat": m(0),
    "gross": m(4500),
    "payer": "client",
    "payer_name": None,
    "status": "open",
    "invoice_id": None,
    "invoice_number": None,
    "price_list": "2026-01-01",
}


def client_answers(services, owed=4500):
    services.on(
        "GET",
        "/clients/c-1/charges",
        {
            "client_id": "c-1",
            "client_name": "Emma Hart",
            "funded": False,
            "charges": [CHARGE],
            "unpriced": [
                {
                    "session_id": "s-9",
                    "starts_at": "2026-03-09T10:00:00+00:00",
                    "reason": "the price list of 2026-01-01 has no fee for a video booster session",
                }
            ],
        },
    )
    services.on(
        "GET",
        "/clients/c-1/balance",
        {"client_id": "c-1", "as_of": None, "client": figures(owed), "funder": figures(0)},
    )
    services.on("GET", "/clients/c-1/invoices", [])
    services.on("GET", "/clients/c-1/payments", [])
    services.on(
        "GET",
        "/clients/c-1/statement",
        {
            "client_id": "c-1",
            "client_name": "Emma Hart",
            "as_of": None,
            "lines": [
                {
                    "at": "2026-03-02T11:00:00+00:00",
                    "on": "2026-03-02",
                    "what": "Non-attendance: therapy session",
                    "payer": "client",
                    "amount": m(4500),
                    "owed": m(4500),
                }
            ],
        },
    )
    services.on(
        "GET",
        "/clients/c-1/funding",
        {
            "client_id": "c-1",
            "payer": "self",
            "payer_name": None,
            "payer_reference": None,
            "payer_email": None,
            "funded_sessions": None,
            "funded_used": 0,
            "reduced_fee": None,
            "reduced_fee_reason": None,
        },
    )


def payment_form(page: str, **values) -> dict:
    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    return {
        "csrf_token": csrf_of(page),
        "form": "payment",
        "back": "/clients/c-1/billing",
        "idempotency_key": key,
        "method": "card",
        "received_on": "2026-03-03",
        "payer": "client",
        "invoice_id": "",
        "reference": "",
        "kind": "payment",
        **values,
    }


def test_reception_records_a_payment_in_pounds_sent_as_pence(signed_in, services):
    client_answers(services)
    reception = signed_in("admin")
    page = reception.get("/clients/c-1/billing").get_data(as_text=True)
    assert "Billing: Emma Hart" in page and "£45.00" in page
    assert "did not attend" in page
    assert "Non-attendance: therapy session" in page  # the statement
    assert "Not charged" in page and "no fee for a video booster session" in page
    services.on(
        "POST",
        "/payments",
        {
            "payment_id": "p-1",
            "kind": "payment",
            "client_id": "c-1",
            "payer": "client",
            "method": "card",
            "amount": m(9050),
            "on": "2026-03-03",
            "reference": None,
            "allocations": [],
            "to_credit": m(4550),
        },
        status=201,
    )
    answer = reception.post(
        "/clients/c-1/billing/payments", data=payment_form(page, amount="£90.50")
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#balance")
    sent = services.last("POST", "/payments")
    assert sent["json"]["amount"] == 9050 and sent["json"]["currency"] == GBP
    assert sent["idempotency_key"]
    shown = reception.get("/clients/c-1/billing").get_data(as_text=True)
    assert "£45.50 is held as credit" in shown


def test_an_amount_that_is_not_money_is_refused_beside_the_field(signed_in, services):
    client_answers(services)
    reception = signed_in("admin")
    page = reception.get("/clients/c-1/billing").get_data(as_text=True)
    for typed in ("ninety", "90.505", "NaN"):
        again = reception.post(
            "/clients/c-1/billing/payments", data=payment_form(page, amount=typed)
        )
        html = again.get_data(as_text=True)
        assert again.status_code == 422, typed
        assert 'id="payment-amount-error"' in html and f'value="{typed}"' in html
    assert not [c for c in services.calls if c["path"] == "/payments"]


def test_a_refusal_of_the_billing_service_comes_back_beside_its_field(signed_in, services):
    client_answers(services)
    reception = signed_in("admin")
    page = reception.get("/clients/c-1/billing").get_data(as_text=True)
    services.on(
        "POST",
        "/payments",
        {
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "amount: too much",
            "errors": [{"field": "amount", "reason": "must be between 1 and 100000000 pence"}],
        },
        status=422,
    )
    again = reception.post("/clients/c-1/billing/payments", data=payment_form(page, amount="0"))
    assert again.status_code == 422
    assert "must be between 1 and 100000000 pence" in again.get_data(as_text=True)


def test_a_therapist_sees_whether_sessions_are_funded_not_the_money(signed_in, services):
    services.on(
        "GET",
        "/clients/c-1/charges",
        {
            "client_id": "c-1",
            "client_name": "Emma Hart",
            "funded": True,
            "sessions": [
                {"session_id": "s-1", "starts_at": "2026-03-02T10:00:00+00:00", "funded": True}
            ],
        },
    )
    page = signed_in("therapist").get("/clients/c-1/billing").get_data(as_text=True)
    assert "Funded" in page and "£" not in page and "Record" not in page
    assert not [c for c in services.calls if c["path"].endswith("/balance")]
    assert signed_in("therapist").get("/billing").status_code == 403


def test_the_billing_dashboard_and_its_csv(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/reports/income",
        {
            "currency": GBP,
            "months": [{"month": "2026-03", "charged": m(31500), "received": m(30000)}],
            "therapists": [{"month": "2026-03", "therapist_id": "t-1", "charged": m(31500)}],
        },
    )
    services.on(
        "GET",
        "/reports/aged-debt",
        {
            "as_of": "2026-05-15",
            "currency": GBP,
            "buckets": {"0-30": 0, "31-60": 1500, "61-90": 0, "90+": 0},
            "total": m(1500),
            "invoices": [
                {
                    "invoice_id": "i-2",
                    "number": "INV-000002",
                    "client_id": "c-1",
                    "client_name": "Emma Hart",
                    "payer": "client",
                    "payer_name": None,
                    "issued_on": "2026-03-31",
                    "total": m(9000),
                    "outstanding": m(1500),
                    "credited": m(0),
                    "age_days": 45,
                    "bucket": "31-60",
                }
            ],
        },
    )
    lead = signed_in("clinical_lead")
    page = lead.get("/billing").get_data(as_text=True)
    assert "£15.00" in page and "Dr Sarah Okafor" in page and "INV-000002" in page
    csv = lead.get("/billing.csv")
    assert csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert "income,2026-03,,315.00,300.00" in text
    assert "by therapist,2026-03,Dr Sarah Okafor,315.00," in text
    assert "31-60,INV-000002,Emma Hart,client,2026-03-31,45,15.00" in text


def test_a_credit_note_from_the_invoice_list(signed_in, services):
    client_answers(services)
    services.on(
        "GET",
        "/clients/c-1/invoices",
        [
            {
                "invoice_id": "i-1",
                "number": "INV-000001",
                "client_id": "c-1",
                "payer": "client",
                "payer_name": None,
                "issued_on": "2026-03-31",
                "total": m(4500),
                "outstanding": m(4500),
                "credited": m(0),
            }
        ],
    )
    reception = signed_in("admin")
    page = reception.get("/clients/c-1/billing").get_data(as_text=True)
    assert "Credit INV-000001" in page
    services.on(
        "POST", "/invoices/i-1/credit-note", {"number": "CN-000001", "amount": m(4500)}, 201
    )
    key = page.split('id="form-credit-i-1"')[1].split('name="idempotency_key" value="')[1][:32]
    answer = reception.post(
        "/clients/c-1/billing/invoices/i-1/credit-note",
        data={
            "csrf_token": csrf_of(page),
            "form": "credit-i-1",
            "back": "/clients/c-1/billing",
            "idempotency_key": key,
            "reason": "billed in error",
        },
    )
    assert answer.status_code == 302
    assert services.last("POST", "/invoices/i-1/credit-note")["json"] == {
        "reason": "billed in error"
    }
    assert "Credit note CN-000001 issued for £45.00." in reception.get(
        "/clients/c-1/billing"
    ).get_data(as_text=True)


def test_an_invoice_pdf_asked_by_what_is_not_an_invoice_id_is_not_found(signed_in, services):
    """The slow fuzz of the pages (tests/security) asked for an invoice whose id held a
    newline: the PDF's Content-Disposition header could not be made (a 500). Not an id:
    404, and the billing service is not asked."""
    reception = signed_in("admin")
    for bad in ("a%0Ab", "a%0D%0ASet-Cookie:x", "a%22b", "..%2Fx"):
        r = reception.get(f"/invoices/{bad}.pdf")
        assert r.status_code == 404, (bad, r.status_code)
    assert not [c for c in services.calls if "/invoices/" in c["path"]]
