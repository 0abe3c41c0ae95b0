"""A client's whole IPT journey in the browser, driving only the portal (issue 13).

Grace (made up, like the practice page's Emma: depression with a role dispute with her
husband) is registered by reception, assessed, formulated with her husband seen unilaterally
in the interpersonal inventory, booked for a 16-session course on the Book page, seen for
session 1 (attended, a note, homework set and done), moved initial -> middle -> ending, and
discharged with an outcome summary. After every save the test asserts what the page shows.
Every page is screenshotted at desktop (1280) and phone (390) widths into tests/artifacts/
and checked with axe-core (no serious or critical violation).

Only the staff and the therapists' working hours are set up outside the UI (the seed's own
steps). Scheduling marks a session attended only once it has started, so the test moves the
scheduling API's clock to just after session 1 for that one click (tests/e2e/clock.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, ROOT, accessibility_violations, shot

pytestmark = pytest.mark.browser
# Saves wait on the services (a 16-session course takes seconds on a shared 2-core machine):
# page assertions wait as long as page actions do (conftest's default timeout).
expect.set_options(timeout=60_000)
LONDON = ZoneInfo("Europe/London")
THERAPIST = "sarah-okafor"
PHONE, NEW_PHONE = "07700 900123", "07700 900456"

STAFF_AND_HOURS = """
import os
from deploy.local import seed
from services.portal.users import UserStore
from shared.config import Settings
from shared.mongo import client
settings, password = Settings.from_env(), os.environ["RAPPORT_DEMO_PASSWORD"]
db = client(settings.mongo_uri)[settings.database("portal")]
users = UserStore(db)
users.ensure_indexes()
seed.seed_staff(users, password)
token, _ = seed.lead_token(settings, password)
seed.seed_therapists(seed.Api(settings.service_urls, token), seed.Progress(db))
"""


@pytest.fixture(scope="module")
def staff(stack):
    done = subprocess.run(
        [sys.executable, "-c", STAFF_AND_HOURS],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield
    stack.shift_clock(0)


def sign_in(page, stack, email: str) -> None:
    page.goto(stack.urls["portal"] + "/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def capture(page, name: str) -> None:
    """Screenshots at desktop and phone width, each checked with axe-core."""
    for label, size in (
        ("desktop", {"width": 1280, "height": 900}),
        ("phone", {"width": 390, "height": 844}),
    ):
        page.set_viewport_size(size)
        shot(page, f"journey-{name}-{label}")
        serious = accessibility_violations(page)
        assert serious == [], f"{name} ({label}): {serious}"
    page.set_viewport_size({"width": 1280, "height": 900})


def flash(page, text: str) -> None:
    expect(page.locator(".messages")).to_contain_text(text)


def until_shown(page, check, what: str, timeout: float = 90.0) -> None:
    """Reload until a projection has caught up (a read that lags a write); the record itself
    is read from the client's stream and never lags."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}\n{page.inner_text('main')[:2000]}")
        time.sleep(0.5)
        page.reload()


def first_weekday(after_days: int) -> date:
    day = date.today() + timedelta(days=after_days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_grace_from_registration_to_discharge(stack, staff, new_page):
    reception, therapist = new_page(), new_page()
    sign_in(reception, stack, "reception@rapport.test")
    sign_in(therapist, stack, "therapist1@rapport.test")

    reception.get_by_role("link", name="Clients", exact=True).click()
    record_url = register(reception)
    correct_the_phone(reception)
    find_by_phone(reception)
    therapist.goto(record_url)
    assess(therapist)
    formulate(therapist)
    change_phase(therapist, "Initial")
    book_the_course(reception, record_url)
    attend_session_one(therapist, stack, record_url)
    write_a_note(therapist)
    set_homework_and_mark_it_done(therapist)
    change_phase(therapist, "Middle")
    change_phase(therapist, "Ending")
    discharge_by_keyboard(therapist)


def register(page) -> str:
    page.get_by_role("link", name="Register a client").click()
    page.get_by_label("Given name").fill("Grace")
    page.get_by_label("Family name").fill("Whitfield")
    page.get_by_label("Date of birth").fill("1980-09-14")
    page.get_by_role("textbox", name="E-mail").fill("grace.whitfield@example.test")
    page.get_by_label("Mobile").fill(PHONE)
    page.get_by_label("Text message").check()
    page.get_by_label("Therapist").select_option(THERAPIST)
    page.get_by_label("Referred by").fill("GP")
    capture(page, "01-register")
    page.get_by_role("button", name="Register").click()
    flash(page, "Client registered.")
    expect(page.get_by_role("heading", name="Grace Whitfield")).to_be_visible()
    details = page.locator("#details")
    expect(details).to_contain_text("Dr Sarah Okafor")
    expect(details).to_contain_text(PHONE)
    assert page.locator("#formulation").count() == 0  # reception sees no clinical sections
    capture(page, "02-record-reception")
    return page.url.split("#")[0]


def correct_the_phone(page) -> None:
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Mobile").fill(NEW_PHONE)
    page.get_by_label("Reason for the change").fill("Grace rang with a new mobile number")
    capture(page, "03-edit-details")
    page.get_by_role("button", name="Save the details").click()
    flash(page, "Details corrected.")
    expect(page.locator("#details")).to_contain_text(NEW_PHONE)


def find_by_phone(page) -> None:
    page.get_by_role("link", name="Clients", exact=True).click()

    def listed() -> bool:
        page.get_by_label("Search").fill("+44 7700 900456")
        page.get_by_role("button", name="Filter").click()
        return "Grace Whitfield" in page.locator("main table").inner_text()

    until_shown(page, listed, "Grace in the client list, found by her new phone number")
    row = page.locator("main table tbody tr", has_text="Grace Whitfield")
    expect(row).to_contain_text("Dr Sarah Okafor")  # a name, not the therapist's id
    capture(page, "04-clients-search")


def assess(page) -> None:
    page.get_by_role("link", name="Record the assessment").click()
    page.get_by_label("Presenting difficulties").fill(
        "Low mood since starting a new job as a care assistant; overeating, poor sleep, "
        "irritability"
    )
    page.get_by_label("Depression").check()
    page.get_by_label("Goals, one per line").fill("Feel like myself again\nMore help at home")
    page.get_by_label("Risk summary").fill(
        "No thoughts of self-harm; her three children are protective"
    )
    capture(page, "05-assessment")
    page.get_by_role("button", name="Save the assessment").click()
    flash(page, "Assessment recorded.")
    section = page.locator("#assessment")
    expect(section).to_contain_text("care assistant")
    expect(section).to_contain_text("More help at home")
    expect(section).to_contain_text("Depression".lower())


def formulate(page) -> None:
    page.get_by_role("link", name="Record the formulation").click()
    page.get_by_label("Role dispute").check()
    page.get_by_label("Formulation (the problem area").fill(
        "Depression linked to a non-reciprocal role expectation with her husband since the new job"
    )
    person(
        page,
        0,
        "Daniel",
        "husband",
        "Inner",
        "loyal, funny",
        "expects her to run the house",
        unilateral=True,
    )
    person(page, 1, "Sue", "sister", "Middle", "listens", "lives far away")
    page.get_by_role("button", name="Add another person").click()  # portal.js adds a row in place
    expect(page.get_by_role("group", name="Person 4")).to_be_visible()
    person(page, 3, "Maya", "eldest daughter", "Inner", "helps with the little ones", "")
    page.get_by_label("Goals, one per line").fill(
        "Negotiate the housework\nSay what she needs without a row"
    )
    capture(page, "06-formulation")
    page.get_by_role("button", name="Save the formulation").click()
    flash(page, "Formulation recorded.")
    section = page.locator("#formulation")
    expect(section).to_contain_text("Role dispute")
    expect(section.locator("tr", has_text="Daniel")).to_contain_text("unilateral partner")
    expect(section).to_contain_text("Maya")
    expect(section.locator("svg.circle")).to_have_count(1)
    capture(page, "07-record-formulated")


def person(
    page,
    row: int,
    name: str,
    relationship: str,
    ring: str,
    good: str,
    hard: str,
    unilateral: bool = False,
) -> None:
    group = page.get_by_role("group", name=f"Person {row + 1}")
    group.get_by_label("Name").fill(name)
    group.get_by_label("Relationship").fill(relationship)
    group.get_by_label("Ring").select_option(label=ring)
    group.get_by_label("What is good").fill(good)
    group.get_by_label("What is not so good").fill(hard)
    if unilateral:
        group.get_by_label("Significant other seen unilaterally").check()


def change_phase(page, to: str) -> None:
    section = page.locator("#phase")
    options = section.get_by_label("Move to").locator("option")
    expect(options).not_to_have_count(0)
    section.get_by_label("Move to").select_option(label=to)
    section.get_by_label("Why").fill(f"Agreed with Grace: {to.lower()} phase")
    section.get_by_role("button", name="Change phase").click()
    flash(page, f"Phase changed to {to}.")
    expect(page.locator("#phase")).to_contain_text(f"Now: {to}")


def book_the_course(page, record_url: str) -> None:
    page.goto(record_url)
    page.get_by_role("link", name="Book for this client").click()
    start = first_weekday(3)
    page.get_by_label("Free slots from").fill(start.isoformat())
    page.get_by_role("button", name="Show free slots").click()
    client = page.get_by_label("Client", exact=True)
    # the booking list is records' client list (a projection): wait for Grace to be in it
    until_shown(
        page,
        lambda: (
            client.locator("option", has_text="Grace Whitfield").count() == 1
            and page.locator("input[name=slot]").count() > 0
        ),
        "Grace and free slots on the Book page",
    )
    client.select_option(label="Grace Whitfield")
    page.locator("input[name=slot]").first.check()
    page.get_by_label("A course").check()
    capture(page, "08-book")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("heading", name="Course booked")).to_be_visible()
    expect(page.locator("main")).to_contain_text("16 of 16 sessions booked")
    capture(page, "09-course-booked")


def attend_session_one(page, stack, record_url: str) -> None:
    page.goto(record_url)
    until_shown(
        page,
        lambda: page.locator("#sessions tbody tr", has_text="Treatment").count() == 16,
        "the sixteen sessions on Grace's record",
    )
    first = page.locator("#sessions tbody tr").first.get_by_role("link")
    starts = datetime.strptime(first.inner_text().strip(), "%a %d %b %Y, %H:%M").replace(
        tzinfo=LONDON
    )
    first.click()
    expect(page.get_by_role("button", name="Attended")).to_be_visible()
    capture(page, "10-session")
    stack.shift_clock((starts + timedelta(minutes=5) - datetime.now(UTC)).total_seconds())
    try:
        page.get_by_role("button", name="Attended").click()
        flash(page, "Marked attended.")
    finally:
        stack.shift_clock(0)
    page.goto(record_url)
    until_shown(
        page,
        lambda: "attended" in page.locator("#sessions tbody tr").first.inner_text(),
        "session 1 attended on the record",
    )


def write_a_note(page) -> None:
    notes = page.locator("#notes")
    chosen = notes.get_by_label("Session").locator("option:checked")
    expect(chosen).to_contain_text("Session 1,")  # the attended session, not session 16
    notes.get_by_label("New note").fill(
        "Grace described the rows about the school run; agreed to map who does what."
    )
    notes.get_by_role("button", name="Add note").click()
    flash(page, "Note added.")
    note = page.locator("#notes article.note").first
    expect(note).to_contain_text("school run")
    expect(note.locator(".meta")).to_contain_text("Session 1,")


def set_homework_and_mark_it_done(page) -> None:
    tasks = page.locator("#tasks")
    tasks.get_by_label("New task").fill("Ask Daniel to do two school runs this week")
    tasks.get_by_role("button", name="Set task").click()
    flash(page, "Task set.")
    item = page.locator("#tasks li", has_text="two school runs")
    expect(item).to_be_visible()
    item.get_by_label("Client's reflection").fill("He said yes to one")
    item.get_by_role("button", name="Mark done").click()
    flash(page, "Task marked complete.")
    expect(page.locator("#tasks li", has_text="two school runs")).to_contain_text("done")
    capture(page, "11-record-in-treatment")


def discharge_by_keyboard(page) -> None:
    page.get_by_role("link", name="Discharge…").click()
    expect(page.get_by_role("heading", name="Discharge Grace Whitfield")).to_be_visible()
    capture(page, "12-discharge")
    for _ in range(60):  # Tab from the top of the page to the first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "d-reason":
            break
    else:
        raise AssertionError("the discharge reason cannot be reached with the Tab key")
    page.keyboard.type("Course complete")
    page.keyboard.press("Tab")
    page.keyboard.type("Better communication with Daniel, more help at home; depression lifted.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Discharge"
    page.keyboard.press("Enter")
    flash(page, "Client discharged.")
    main = page.locator("main")
    expect(main).to_contain_text("was discharged")
    expect(page.locator("#discharge")).to_contain_text("depression lifted")
    for write in ("Add note", "Set task", "Change phase"):
        expect(page.get_by_role("button", name=write)).to_have_count(0)
    capture(page, "13-record-discharged")
