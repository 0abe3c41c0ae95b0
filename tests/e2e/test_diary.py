"""The diary in headless Chromium against every real service, using only the portal's pages:
reception records leave for a therapist, opens the week grid (two therapists side by side),
books a session from a free hour in the grid (by keyboard), sees its block there, and books a
booster series for a client, whose confirmation reaches the client's mailbox (the stack's
development SMTP server). Screenshots at 1280 and 390 px; axe-core on every page."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from .conftest import ROOT, accessibility_violations, shot
from .ui import eventually, mail_to, sign_in

pytestmark = pytest.mark.browser
LONDON = ZoneInfo("Europe/London")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


# The demo practice's staff, therapists and two of its clients (the seed's own steps, so a
# full seed run later in the package carries on from them); the courses and scores of the
# full seed are not needed here and take minutes on a loaded machine.
SETUP = """
import json, os, time
from datetime import date
import requests
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
api = seed.Api(settings.service_urls, token)
progress = seed.Progress(db)
seed.seed_therapists(api, progress)
ids = [
    seed.register(api, progress, case, date.today())
    for case in seed.CASES
    if case.key in ("priya", "john")
]
url = settings.service_urls["scheduling"]
for client_id in ids:  # scheduling must know them before it books them
    seed.wait_for("scheduling's client directory", lambda: requests.get(
        f"{url}/clients/{client_id}/sessions", headers={"Authorization": f"Bearer {token}"},
        timeout=10).status_code == 200)
print(json.dumps(ids))
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
    return stack


def both_widths(page, name: str) -> None:
    """Screenshots at desktop and phone width, and no serious accessibility violation at either."""
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"diary-{name}-{suffix}")
        serious = accessibility_violations(page)
        assert serious == [], f"{name} ({suffix}): {serious}"
    page.set_viewport_size(DESKTOP)


def test_leave_the_week_grid_booking_from_a_free_hour_and_a_booster_series(practice, new_page):
    stack = practice
    today = datetime.now(LONDON).date()
    monday = today + timedelta(days=7 - today.weekday())  # next week
    wednesday, thursday = monday + timedelta(days=2), monday + timedelta(days=3)
    page = new_page()
    sign_in(page, stack, "reception@rapport.test")

    # 1. leave for Tom Reid, from the diary's "Hours and leave" link
    page.get_by_role("link", name="Diary", exact=True).click()
    page.get_by_role("link", name="Hours and leave: Mr Tom Reid").click()
    assert page.get_by_role("heading", name="Working hours and leave: Mr Tom Reid").is_visible()
    assert page.get_by_label("Monday from").input_value() == "09:00"
    page.get_by_label("Leave 1: first day").fill(wednesday.isoformat())
    page.get_by_label("Leave 1: last day").fill(thursday.isoformat())
    page.get_by_label("Leave 1: what").fill("Annual leave")
    page.get_by_role("button", name="Save hours and leave").click()
    page.wait_for_load_state()
    assert page.get_by_text("Hours and leave saved.").is_visible()
    assert page.get_by_label("Leave 1: what").input_value() == "Annual leave"
    both_widths(page, "availability")

    # 2. next week's grid: both therapists side by side, Tom on leave Wednesday and Thursday
    page.get_by_role("link", name="Back to the diary").click()
    page.get_by_role("link", name="Diary", exact=True).click()
    page.get_by_role("link", name="Next week →").click()
    page.wait_for_load_state()
    assert page.get_by_role(
        "heading", name=f"Week of {monday.day} {monday.strftime('%B %Y')}"
    ).is_visible()
    heads = page.locator("h3.colhead").all_inner_texts()
    assert any("Dr Sarah Okafor" in h for h in heads) and any("Mr Tom Reid" in h for h in heads)
    leave = page.locator(".leave", has_text="Annual leave")
    eventually(
        lambda: leave.count() == 2 or (page.reload() and False), what="Tom's leave in the grid"
    )
    both_widths(page, "week")

    # 3. a free hour on Sarah's Tuesday, chosen by keyboard, opens the Book page there
    tuesday = monday + timedelta(days=1)
    free = page.get_by_role(
        "link",
        name=re.compile(
            rf"free: book Dr Sarah Okafor, Tuesday {tuesday.day} {tuesday.strftime('%B')}"
        ),
    ).first
    at = free.inner_text().strip().lstrip("+").strip()[:5]
    free.focus()
    with page.expect_navigation():  # a key press does not wait for the page it opens
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "/book" in page.url and f"time={at}" in page.url
    assert page.locator('input[name="slot"]:checked').count() == 1
    assert page.get_by_role("radio", name="One session").is_checked()
    page.get_by_label("Client").select_option(label="Priya Shah")
    both_widths(page, "book-from-grid")
    page.get_by_role("button", name="Book", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_text("Session booked.").is_visible()
    assert page.get_by_role("heading", name=re.compile(r"^Priya Shah: treatment")).is_visible()
    both_widths(page, "session")

    # 4. the block is in the grid at that time, with its status in words
    page.get_by_role("link", name="See it in the diary").click()
    page.wait_for_load_state()
    block = page.locator("a.appt", has_text="Priya Shah").filter(has_text=f"{at}–")
    eventually(
        lambda: block.count() == 1 or (page.reload() and False), what="the new session in the grid"
    )
    assert "Booked" in block.inner_text()
    both_widths(page, "week-booked")

    # 5. a booster series for John (Tom's client in maintenance), every 2 months
    page.get_by_role("link", name="Book", exact=True).click()
    page.get_by_label("Free slots from").fill((monday + timedelta(days=7)).isoformat())
    page.get_by_label("Therapist").select_option(label="Mr Tom Reid")  # the page follows the choice
    page.wait_for_url(re.compile(r"therapist=tom-reid"))
    page.wait_for_load_state()
    page.get_by_label("Client").select_option(label="John Whitaker")
    first = page.locator('input[name="slot"]').first
    first_at = datetime.fromisoformat(first.get_attribute("value").split("|")[0]).astimezone(LONDON)
    first.check()
    page.get_by_role("radio", name="A booster series").check()
    page.get_by_label("Booster sessions (booster series)").fill("2")
    assert page.get_by_label("Every (months) (booster series)").input_value() == "2"
    page.get_by_role("button", name="Book", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Booster series booked").is_visible(), page.content()[
        :3000
    ]
    assert page.get_by_text("2 of 2 booster sessions booked, every 2 month(s)").is_visible()
    both_widths(page, "boosters-booked")

    # 6. the client is sent a confirmation listing the dates booked
    when = first_at.strftime("%A %-d %B %Y at %H:%M")
    confirmation = eventually(
        lambda: [
            m
            for m in mail_to(stack, "john.whitaker@example.test")
            if when in m.get_body(("plain",)).get_content()
        ],
        what=f"John's booster confirmation listing {when}",
    )
    body = confirmation[0].get_body(("plain",)).get_content()
    assert "We have booked 2 follow-up appointments" in body, body
