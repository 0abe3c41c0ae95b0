"""An issued invoice reaches whoever pays it by e-mail, with its PDF attached, fetched at send
time from the real billing service (served over HTTP on the same store, its relay publishing
InvoiceIssued on rapport.billing): once, even when the event comes twice; retried while
billing is down, then sent; to the funder's address when billing's funding holds one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server

from services.billing.app import create_app as create_billing
from services.billing.tests.conftest import Clock, Diary, charges_of
from services.billing.tests.test_service import FIRST, setup_practice
from services.notifications.workers.channels import PermanentError, TransientError
from services.notifications.workers.invoices import BillingInvoices, InvoiceGone
from shared import kafka as kafka_clients
from shared.mongo import client as mongo_client
from shared.outbox import message_from_document
from testkit.plugin import service_workers

from .conftest import notification_events, wait
from .test_exactly_once import message_ids


class Outage:
    """Billing behind a switch: while `down`, every request is answered 503."""

    def __init__(self, app):
        self.app, self.down, self.refused = app, False, 0

    def __call__(self, environ, start_response):
        if self.down:
            self.refused += 1
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"billing is down"]
        return self.app(environ, start_response)


@pytest.fixture
def billing(settings):
    app = create_billing(settings, clock=Clock(datetime(2026, 3, 31, 9, tzinfo=UTC)))
    from services.portal.tests.conftest import _Quiet

    switch = Outage(app)
    server = make_server("127.0.0.1", 0, switch, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, switch, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def billed_settings(nsettings, billing):
    return nsettings.with_(service_urls={**nsettings.service_urls, "billing": billing[2]})


@pytest.fixture
def stack(billed_settings, feed, workers):
    """Records' and scheduling's relays (feed), billing's relay, projections and charge
    worker, and notifications' relay, planner and dispatcher."""
    workers.start(
        *feed.relays(),
        *service_workers(billed_settings, "billing"),
        *service_workers(billed_settings, "notifications"),
    )
    return workers


def republish(settings, event_type: str) -> None:
    """Billing's events of this type on its topic once more, after its relay published them."""
    events = mongo_client(settings.mongo_uri)[settings.database("billing")]["events"]
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    for doc in events.find({"type": event_type}):
        producer.send(
            settings.topic("billing"),
            key=doc["stream_id"].encode(),
            value=message_from_document(doc),
        )
    producer.flush()
    producer.close()


def issue(api, h, settings, funding: dict) -> dict:
    setup_practice(api, h, settings)
    assert api.put("/clients/c1/funding", headers=h, json=funding).status_code == 200
    Diary(settings, "c1").course(FIRST, count=2)
    charges_of(api, h, "c1", 2)
    issued = api.post("/invoices", headers=h, json={"client_id": "c1"})
    assert issued.status_code == 201, issued.json
    return issued.json


def the_pdf(message):
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    return attachment.get_filename(), attachment.get_content()


def test_a_self_pay_invoice_is_emailed_once_with_its_pdf(
    billing, billed_settings, stack, mail, book, auth_header
):
    api = billing[0].test_client()
    invoice = issue(api, auth_header("admin"), billed_settings, {"payer": "self"})
    key = f"invoice:{invoice['invoice_id']}:email"
    wait(lambda: (book.find_one({"_id": key}) or {}).get("status") == "sent")
    [sent] = mail.to("c1@example.test")
    filename, pdf = the_pdf(sent)
    assert filename == f"{invoice['number']}.pdf" and pdf.startswith(b"%PDF")
    assert sent["Subject"] == f"Invoice {invoice['number']} from {billed_settings.practice_name}"
    body = sent.get_body(("plain",)).get_content()
    assert invoice["number"] in body and "Total: £180.00" in body
    assert "Amount due: £180.00, by 30 April 2026" in body and "How to pay:" in body
    assert "Therapy" not in body and "session" not in body.lower()  # nothing about the care

    # InvoiceIssued delivered again, as a relay that crashed before marking would
    republish(billed_settings, "InvoiceIssued")
    wait(lambda: "NotificationSent" in notification_events(billed_settings, key))
    time.sleep(3)  # time for a second send, had the redelivery planned one
    assert list(message_ids(mail).values()) == [1]
    assert book.count_documents({"kind": "invoice"}) == 1


def test_billing_down_at_send_time_is_retried_then_the_funder_gets_it(
    billing, billed_settings, stack, mail, book, auth_header
):
    app, switch, _ = billing
    api = app.test_client()
    switch.down = False
    funding = {"payer": "insurer", "payer_name": "Acme Health", "payer_email": "claims@acme.test"}
    h = auth_header("admin")
    setup_practice(api, h, billed_settings)
    assert api.put("/clients/c1/funding", headers=h, json=funding).status_code == 200
    Diary(billed_settings, "c1").course(FIRST, count=2)
    charges_of(api, h, "c1", 2)
    switch.down = True  # from here notifications finds billing down
    issued = api.post("/invoices", headers=h, json={"client_id": "c1"})
    assert issued.status_code == 201, issued.json
    key = f"invoice:{issued.json['invoice_id']}:email"
    # attempts count at the claim, before the fetch: wait for billing to have refused twice
    wait(lambda: switch.refused >= 2, message="two fetches refused")
    assert book.find_one({"_id": key})["status"] != "sent" and not mail.messages
    switch.down = False
    wait(lambda: (book.find_one({"_id": key}) or {}).get("status") == "sent")
    [sent] = mail.to("claims@acme.test")
    filename, pdf = the_pdf(sent)
    assert filename == f"{issued.json['number']}.pdf" and pdf.startswith(b"%PDF")
    assert not mail.to("c1@example.test")
    assert "NotificationFailed" in notification_events(billed_settings, key)


@pytest.fixture
def answering(settings):
    """A billing that answers every request with one status (set by the test)."""
    state = {"status": "404 Not Found"}

    def app(environ, start_response):
        start_response(state["status"], [("Content-Type", "text/plain")])
        return [b"no"]

    from services.portal.tests.conftest import _Quiet

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, BillingInvoices(f"http://127.0.0.1:{server.server_port}", settings.token_secret)
    server.shutdown()


def test_billing_answers_map_to_void_retry_or_fail(answering):
    state, invoices = answering
    with pytest.raises(InvoiceGone):  # the dispatcher voids the message
        invoices.pdf("i9", "INV-000009")
    for status in ("503 Service Unavailable", "429 Too Many Requests", "200 OK"):
        state["status"] = status  # 200 with something other than a PDF: tried again too
        with pytest.raises(TransientError):
            invoices.pdf("i9", "INV-000009")
    state["status"] = "403 Forbidden"
    with pytest.raises(PermanentError):
        invoices.pdf("i9", "INV-000009")
