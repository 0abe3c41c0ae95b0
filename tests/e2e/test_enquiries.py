"""From a phone-sized "get in touch" page to a registered client, in headless Chromium against
every real service, using only the pages and the text message the person is sent (staff
never see the booking link). A person sends an enquiry from a phone → reception puts them on
the waiting list → offers assessment times → the person books one by link on the phone → reception
registers them without retyping, and the booked assessment is already theirs. Screenshots
at 1280 and 390 px; axe-core on every page."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from .conftest import ROOT, accessibility_violations, shot
from .ui import eventually, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

SETUP = """
import os
from deploy.local import seed
from services.portal.users import UserStore
from shared.config import Settings
from shared.mongo import client as mongo_client
settings = Settings.from_env()
db = mongo_client(settings.mongo_uri)[settings.database("portal")]
users = UserStore(db)
users.ensure_indexes()
seed.seed_staff(users, os.environ["RAPPORT_DEMO_PASSWORD"])
token, _ = seed.lead_token(settings, os.environ["RAPPORT_DEMO_PASSWORD"])
seed.seed_therapists(seed.Api(settings.service_urls, token), seed.Progress(db))
"""


def python(stack, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def practice(stack):
    python(stack, SETUP)
    return stack


def booking_link_sent(stack) -> str | None:
    """The link in the text message the notifications service sent (the stack's SMS sink)."""
    sent = stack.run_dir / "sms" / "messages.jsonl"
    for line in sent.read_text().splitlines() if sent.exists() else []:
        found = re.search(r"https?://\S+/book-online/[\w-]+", json.loads(line)["body"])
        if found:
            return found.group(0)
    return None


def both_widths(page, name: str) -> None:
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"enquiry-{name}-{suffix}")
        serious = accessibility_violations(page)
        assert serious == [], f"{name} ({suffix}): {serious}"


def test_enquiry_waiting_list_booking_link_and_registration(practice, new_page):
    stack = practice
    portal = stack.urls["portal"]

    # 1. the person, on a phone, gets in touch
    person = new_page()
    person.set_viewport_size(PHONE)
    person.goto(portal + "/enquire")
    assert person.get_by_role("heading", name="Get in touch").is_visible()
    both_widths(person, "form")
    person.set_viewport_size(PHONE)
    person.get_by_label("First name").fill("Sam")
    person.get_by_label("Last name").fill("Okafor")
    person.get_by_label("Phone number").fill("07700 900123")
    person.get_by_label("What is troubling you?").fill(
        "Low since my mother died in the spring; writing down important events or feelings"
    )
    person.get_by_label("By telephone").check()
    person.get_by_label("Days and times that suit you (optional)").fill("weekday mornings")
    person.get_by_label("How did you hear of us? (optional)").fill("my GP")
    # the consent box left unticked: the form comes back with the reason, nothing kept lost
    person.wait_for_timeout(3500)  # a person takes longer than the form's minimum fill time
    person.get_by_role("button", name="Send").click()
    person.wait_for_load_state()
    assert person.get_by_text("agree to us contacting you").first.is_visible()
    assert person.get_by_label("Last name").input_value() == "Okafor"
    both_widths(person, "form-refused")
    person.set_viewport_size(PHONE)
    person.get_by_label("I agree to the practice contacting me about this enquiry").check()
    person.wait_for_timeout(3500)
    person.get_by_role("button", name="Send").click()
    person.wait_for_load_state()
    assert person.get_by_role("heading", name="Thank you for getting in touch").is_visible()
    both_widths(person, "thanks")

    # 2. reception finds it in the inbox and puts Sam on the waiting list
    reception = new_page()
    sign_in(reception, stack, "reception@rapport.test")
    reception.get_by_role("link", name="Enquiries", exact=True).click()
    sam = reception.locator("#inbox").get_by_role("link", name="Sam Okafor")
    eventually(lambda: sam.count() == 1 or (reception.reload() and False), what="Sam in the inbox")
    both_widths(reception, "inbox")
    reception.set_viewport_size(DESKTOP)
    sam.click()
    reception.wait_for_load_state()
    assert reception.get_by_text("writing down important events or feelings").is_visible()
    reception.get_by_label("Priority").select_option("soon")
    reception.get_by_role("button", name="Add to waiting list").click()
    reception.wait_for_load_state()
    assert reception.get_by_text("soon priority, 0 weeks waiting").is_visible()

    # 3. reception offers three assessment times with Dr Sarah Okafor, by telephone
    with reception.expect_navigation():  # the choice is shown at once (portal.js)
        reception.get_by_label("Therapist", exact=True).first.select_option(label="Dr Sarah Okafor")
    reception.wait_for_load_state()
    boxes = reception.locator('#form-offer input[name="starts"]')
    eventually(lambda: boxes.count() >= 3, what="free times to offer")
    offered = [boxes.nth(n).get_attribute("value") for n in range(3)]
    for n in range(3):
        boxes.nth(n).check()
    both_widths(reception, "enquiry")
    reception.set_viewport_size(DESKTOP)
    reception.get_by_role("button", name="Send these times by link").click()
    reception.wait_for_load_state()
    assert reception.get_by_text("3 time(s) sent to the person by link").is_visible()

    # 4. the link arrives by text (Sam asked for a phone call); they book the second time
    url = eventually(lambda: booking_link_sent(stack), what="the booking link by text")
    assert url.startswith(f"{portal}/book-online/")
    assert url.rsplit("/", 1)[-1] not in reception.content()  # staff never see it
    person.set_viewport_size(PHONE)
    person.goto(url)
    assert person.get_by_role("heading", name=re.compile("Choose a time")).is_visible()
    radios = person.locator('input[name="starts_at"]')
    assert [radios.nth(n).get_attribute("value") for n in range(radios.count())] == offered
    both_widths(person, "book-online")
    person.set_viewport_size(PHONE)
    radios.nth(1).check()
    person.get_by_role("button", name="Book this time").click()
    person.wait_for_load_state()
    assert person.get_by_role("heading", name="Your appointment is booked").is_visible()
    both_widths(person, "booked")
    person.goto(url)
    assert person.get_by_role("heading", name="This link is not valid any more").is_visible()

    # 5. reception registers Sam: only the date of birth is asked, the rest carried over
    reception.reload()
    reception.get_by_label("Date of birth").fill("1990-01-02")
    reception.get_by_label("Therapist", exact=True).last.select_option(label="Dr Sarah Okafor")
    reception.get_by_role("button", name="Register", exact=True).click()
    reception.wait_for_load_state()
    assert "/clients/" in reception.url, reception.content()[:3000]
    assert reception.get_by_role("heading", name=re.compile("Sam Okafor")).is_visible()
    page = reception.content()
    assert "07700 900123" in page and "my GP" in page
    both_widths(reception, "client")
