"""Billing in headless Chromium against every real service, using only the portal's pages:
reception opens a client's billing page (the charges the diary's sessions raised: two
attended, one not attended), issues an invoice, sees it on the practice's aged-debt report,
records a part payment, and sees the client's balance and the aged-debt report change.
Screenshots at 1280 and 390 px; axe-core on every page. The set-up writes the diary's events
as scheduling records them (sessions two weeks back cannot be booked through the API, which
refuses the past by design)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, accessibility_violations, shot
from .ui import eventually, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

SETUP = """
import json, os
from datetime import date, datetime, timedelta, time
from zoneinfo import ZoneInfo
import requests
from deploy.local import seed
from services.portal.users import UserStore
from shared.config import Settings
from shared.events import Actor, NewEvent
from shared.eventstore import Metadata
from shared.mongo import client as mongo_client
from shared.web import ServiceContext
settings = Settings.from_env()
db = mongo_client(settings.mongo_uri)[settings.database("portal")]
users = UserStore(db)
users.ensure_indexes()
seed.seed_staff(users, os.environ["RAPPORT_DEMO_PASSWORD"])
token, _ = seed.lead_token(settings, os.environ["RAPPORT_DEMO_PASSWORD"])
api = seed.Api(settings.service_urls, token)
progress = seed.Progress(db)
seed.seed_therapists(api, progress)
seed.seed_fees(api, progress)
case = next(c for c in seed.CASES if c.key == "priya")
client_id = seed.register(api, progress, case, date.today())
headers = {"Authorization": f"Bearer {token}"}
billing = settings.service_urls["billing"]
seed.wait_for("billing's client directory", lambda: requests.get(
    f"{billing}/clients/{client_id}/balance", headers=headers, timeout=10).status_code == 200)
store = ServiceContext("scheduling", settings).store
meta = Metadata(actor=Actor("e2e-setup", "admin"), correlation_id="e2e-billing")
london = ZoneInfo("Europe/London")
first = date.today() - timedelta(days=21)
for n, outcome in enumerate(("SessionAttended", "SessionMissed", "SessionAttended")):
    starts = datetime.combine(first + timedelta(days=7 * n), time(11), london)
    facts = {"session_id": f"{client_id}-bill-{n}", "client_id": client_id,
             "therapist_id": "sarah-okafor", "starts_at": starts,
             "ends_at": starts + timedelta(minutes=50)}
    booked = NewEvent("SessionBooked", {**facts, "kind": "treatment", "modality": "video",
        "room": None, "course_id": None, "number": None, "video_link": None})
    ended = NewEvent(outcome, {**facts, "kind": "treatment"}, occurred_at=starts)
    store.append(f"session-{facts['session_id']}", 0, [booked, ended], meta)
seed.wait_for("the three charges", lambda: len(requests.get(
    f"{billing}/clients/{client_id}/charges", headers=headers, timeout=10
).json().get("charges", [])) == 3)
print(json.dumps(client_id))
"""


@pytest.fixture(scope="module")
def practice(stack):
    done = subprocess.run(
        [sys.executable, "-c", SETUP],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return stack, json.loads(done.stdout.strip().splitlines()[-1])


def both_widths(page, name: str) -> None:
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"billing-{name}-{suffix}")
        serious = accessibility_violations(page)
        assert serious == [], f"{name} ({suffix}): {serious}"
    page.set_viewport_size(DESKTOP)


def aged_total(page, stack) -> str:
    page.goto(stack.urls["portal"] + "/billing")
    return page.locator("#aged-total").inner_text().strip()


def test_reception_invoices_records_a_payment_and_balance_and_aged_debt_change(practice, new_page):
    stack, client_id = practice
    page = new_page()
    sign_in(page, stack, "reception@rapport.test")
    assert aged_total(page, stack) == "£0.00"

    # the client's billing page: two attended sessions at £90 and a non-attendance at £45
    page.goto(stack.urls["portal"] + f"/clients/{client_id}")
    page.get_by_role("link", name="Billing", exact=True).last.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Billing: Priya Shah").is_visible()
    assert page.locator("#client-owed").inner_text().strip() == "£225.00"
    assert page.locator("#charges tbody tr").count() == 3
    assert page.get_by_text("did not attend").is_visible()
    both_widths(page, "client")

    # an invoice for the open charges, with its PDF
    page.get_by_role("button", name="Issue invoice").click()
    page.wait_for_load_state()
    assert page.get_by_text("Invoice INV-000001 issued for £225.00.").is_visible()
    pdf = page.get_by_role("link", name="INV-000001.pdf")
    answer = page.request.get(stack.urls["portal"] + pdf.get_attribute("href"))
    assert answer.ok and answer.body().startswith(b"%PDF")
    assert aged_total(page, stack) == "£225.00"
    both_widths(page, "dashboard")

    # a part payment by card, against the invoice
    page.goto(stack.urls["portal"] + f"/clients/{client_id}/billing")
    page.get_by_label("Amount (£)").fill("100")
    page.get_by_label("Method").select_option("card")
    page.get_by_label("Against invoice").select_option(label="INV-000001 (£225.00 owed)")
    page.get_by_label("Reference (optional)").fill("terminal 0042")
    page.get_by_role("button", name="Record").click()
    page.wait_for_load_state()
    assert page.get_by_text("Payment of £100.00 recorded.").is_visible()
    assert page.locator("#client-owed").inner_text().strip() == "£125.00"
    assert page.get_by_role("cell", name="£100.00").first.is_visible()
    eventually(lambda: aged_total(page, stack) == "£125.00", what="aged debt after the payment")
    assert page.locator("#aged-0-30").inner_text().strip() == "£125.00"

    # a payment that is not money is refused beside the field, the input kept
    page.goto(stack.urls["portal"] + f"/clients/{client_id}/billing")
    page.get_by_label("Amount (£)").fill("a hundred")
    page.get_by_role("button", name="Record").click()
    page.wait_for_load_state()
    assert page.locator("#payment-amount-error").is_visible()
    assert page.get_by_label("Amount (£)").input_value() == "a hundred"
    both_widths(page, "refused")
