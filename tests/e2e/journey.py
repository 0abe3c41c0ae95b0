"""The steps of a client's IPT journey in the portal, shared by the journey tests (issue 13):
each step drives only the UI, then asserts what the page shows after the save (a lagging
read would show the old state or an error), and screenshots the new page at desktop and
phone widths with axe-core checked at both. What differs between clients (their words, the
people in their inventory) is passed in; the screenshots of one journey are numbered in
the order taken (tests/artifacts/<journey>-NN-<page>-<width>.png)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, accessibility_violations, shot

LONDON = ZoneInfo("Europe/London")
SHOWN = "%a %d %b %Y, %H:%M"  # how the portal writes a session's time (pages.common.local)
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}

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
    """Only the staff and the therapists' working hours are set up outside the UI (the
    seed's own steps, which carry on where an earlier run of them stopped)."""
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


@dataclass(frozen=True)
class Client:
    given: str
    family: str
    born: str
    email: str
    phone: str
    therapist_id: str
    therapist: str  # as the portal names them
    texts: bool = True  # reminders by text message as well as e-mail

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(frozen=True)
class Person:
    """One row of the interpersonal inventory."""

    name: str
    relationship: str
    ring: str  # Inner, Middle or Outer
    good: str
    hard: str
    unilateral: bool = False


@dataclass
class Journey:
    """One client's journey: who they are and the screenshots taken so far."""

    name: str  # the screenshots' prefix
    client: Client
    taken: list[str] = field(default_factory=list)

    def capture(self, page, what: str) -> None:
        """Screenshots at desktop and phone width, each checked with axe-core."""
        self.taken.append(what)
        name = f"{self.name}-{len(self.taken):02d}-{what}"
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            shot(page, f"{name}-{label}")
            serious = accessibility_violations(page)
            assert serious == [], f"{what} ({label}): {serious}"
        page.set_viewport_size(DESKTOP)


def flash(page, text: str) -> None:
    expect(page.locator(".messages")).to_contain_text(text)


def until_shown(page, check, what: str, timeout: float = 90.0) -> None:
    """Reload until a projection has caught up with what someone else wrote (the portal
    makes a person's own writes show at once, not another's); the record itself is read
    from the client's stream and never lags."""
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


def register(page, j: Journey, referred_by: str) -> str:
    """Reception registers the client; the record's URL."""
    c = j.client
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="Register a client").click()
    page.get_by_label("Given name").fill(c.given)
    page.get_by_label("Family name").fill(c.family)
    page.get_by_label("Date of birth").fill(c.born)
    page.get_by_role("textbox", name="E-mail").fill(c.email)
    page.get_by_label("Mobile").fill(c.phone)
    if c.texts:
        page.get_by_label("Text message").check()
    page.get_by_label("Therapist").select_option(c.therapist_id)
    page.get_by_label("Referred by").fill(referred_by)
    j.capture(page, "register")
    page.get_by_role("button", name="Register").click()
    flash(page, "Client registered.")
    expect(page.get_by_role("heading", name=c.name)).to_be_visible()
    details = page.locator("#details")
    expect(details).to_contain_text(c.therapist)
    expect(details).to_contain_text(c.phone)
    assert page.locator("#formulation").count() == 0  # reception sees no clinical sections
    j.capture(page, "record-reception")
    return page.url.split("#")[0]


def assess(page, j: Journey, difficulties: str, conditions: list[str], goals: list[str], risk: str):
    page.get_by_role("link", name="Record the assessment").click()
    page.get_by_label("Presenting difficulties").fill(difficulties)
    for condition in conditions:
        page.get_by_label(condition).check()
    page.get_by_label("Goals, one per line").fill("\n".join(goals))
    page.get_by_label("Risk summary").fill(risk)
    j.capture(page, "assessment")
    page.get_by_role("button", name="Save the assessment").click()
    flash(page, "Assessment recorded.")
    section = page.locator("#assessment")
    expect(section).to_contain_text(difficulties[:40])
    for shown in goals + [c.lower() for c in conditions]:
        expect(section).to_contain_text(shown)


def formulate(
    page,
    j: Journey,
    area: str,
    formulation: str,
    people: list[Person | None],
    goals: list[str],
) -> None:
    """Record the formulation; `None` in `people` leaves that inventory row empty (skipped).
    Rows beyond the form's first ones are added with "Add another person" (portal.js adds
    the row in place)."""
    page.get_by_role("link", name="Record the formulation").click()
    page.get_by_label(area).check()
    page.get_by_label("Formulation (the problem area").fill(formulation)
    for row, someone in enumerate(people):
        group = page.get_by_role("group", name=f"Person {row + 1}")
        if group.count() == 0:
            page.get_by_role("button", name="Add another person").click()
            expect(group).to_be_visible()
        if someone:
            person(group, someone)
    page.get_by_label("Goals, one per line").fill("\n".join(goals))
    j.capture(page, "formulation")
    page.get_by_role("button", name="Save the formulation").click()
    flash(page, "Formulation recorded.")
    section = page.locator("#formulation")
    expect(section).to_contain_text(area)
    for someone in filter(None, people):
        row = section.locator("tr", has_text=someone.name)
        expect(row).to_contain_text(someone.relationship)
        if someone.unilateral:
            expect(row).to_contain_text("unilateral partner")
    expect(section.locator("svg.circle")).to_have_count(1)
    j.capture(page, "record-formulated")


def person(group, p: Person) -> None:
    group.get_by_label("Name").fill(p.name)
    group.get_by_label("Relationship").fill(p.relationship)
    group.get_by_label("Ring").select_option(label=p.ring)
    group.get_by_label("What is good").fill(p.good)
    group.get_by_label("What is not so good").fill(p.hard)
    if p.unilateral:
        group.get_by_label("Significant other seen unilaterally").check()


def change_phase(page, j: Journey, to: str) -> None:
    section = page.locator("#phase")
    options = section.get_by_label("Move to").locator("option")
    expect(options).not_to_have_count(0)
    section.get_by_label("Move to").select_option(label=to)
    section.get_by_label("Why").fill(f"Agreed with {j.client.given}: {to.lower()} phase")
    section.get_by_role("button", name="Change phase").click()
    flash(page, f"Phase changed to {to}.")
    expect(page.locator("#phase")).to_contain_text(f"Now: {to}")


def choose_on_the_book_page(page, j: Journey, start: date, how: str | None = None) -> None:
    """Slots from `start` for the client's therapist (`how`: "Video", ... as the page names
    it, else the page's default), and the client chosen. Reception registered the client,
    so the booking list (records' client list, a projection) must already show them: the
    portal asks records to reach that write before it answers."""
    if how:
        page.get_by_label("How").select_option(label=how)
    page.get_by_label("Free slots from").fill(start.isoformat())
    page.get_by_role("button", name="Show free slots").click()
    client = page.get_by_label("Client", exact=True)
    expect(client.locator("option", has_text=j.client.name)).to_have_count(1)
    expect(page.locator("input[name=slot]").first).to_be_visible()
    client.select_option(label=j.client.name)


def booked_times(page) -> list[datetime]:
    """The times listed on the "booked" page, in order."""
    return [
        datetime.strptime(t.strip(), SHOWN).replace(tzinfo=LONDON)
        for t in page.locator("ol.booked li a").all_inner_texts()
    ]


def book_the_course(
    page, j: Journey, record_url: str, start: date, how: str | None = None, slot: int = 0
) -> list[datetime]:
    """Book a 16-session course from the record's "Book for this client" (`slot`: which of
    the free slots listed, -1 the last); its times."""
    page.goto(record_url)
    page.get_by_role("link", name="Book for this client").click()
    choose_on_the_book_page(page, j, start, how)
    page.locator("input[name=slot]").nth(slot).check()
    page.get_by_label("A course").check()
    j.capture(page, "book")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("heading", name="Course booked")).to_be_visible()
    expect(page.locator("main")).to_contain_text("16 of 16 sessions booked")
    j.capture(page, "course-booked")
    times = booked_times(page)
    assert len(times) == 16, times
    return times


def attend_session_one(page, stack, j: Journey, record_url: str) -> None:
    """Scheduling marks a session attended only once it has started: its clock is moved to
    just after session 1 for that one click (tests/e2e/clock.py)."""
    page.goto(record_url)
    until_shown(
        page,
        lambda: page.locator("#sessions tbody tr", has_text="Treatment").count() == 16,
        f"the sixteen sessions on {j.client.given}'s record",
    )
    first = page.locator("#sessions tbody tr").first.get_by_role("link")
    starts = datetime.strptime(first.inner_text().strip(), SHOWN).replace(tzinfo=LONDON)
    first.click()
    expect(page.get_by_role("heading", name=j.client.name)).to_be_visible()
    expect(page.get_by_role("button", name="Attended")).to_be_visible()
    j.capture(page, "session")
    stack.shift_clock((starts + timedelta(minutes=5) - datetime.now(UTC)).total_seconds())
    try:
        page.get_by_role("button", name="Attended").click()
        flash(page, "Marked attended.")
    finally:
        stack.shift_clock(0)
    page.goto(record_url)  # the therapist's own write: shown at once, no reload
    expect(page.locator("#sessions tbody tr").first).to_contain_text("attended")


def write_a_note(page, text: str) -> None:
    notes = page.locator("#notes")
    chosen = notes.get_by_label("Session").locator("option:checked")
    expect(chosen).to_contain_text("Session 1,")  # the attended session, not session 16
    notes.get_by_label("New note").fill(text)
    notes.get_by_role("button", name="Add note").click()
    flash(page, "Note added.")
    note = page.locator("#notes article.note").first
    expect(note).to_contain_text(text[:40])
    expect(note.locator(".meta")).to_contain_text("Session 1,")


def set_homework_and_mark_it_done(page, j: Journey, task: str, reflection: str) -> None:
    tasks = page.locator("#tasks")
    tasks.get_by_label("New task").fill(task)
    tasks.get_by_role("button", name="Set task").click()
    flash(page, "Task set.")
    item = page.locator("#tasks li", has_text=task)
    expect(item).to_be_visible()
    item.get_by_label("Client's reflection").fill(reflection)
    item.get_by_role("button", name="Mark done").click()
    flash(page, "Task marked complete.")
    expect(page.locator("#tasks li", has_text=task)).to_contain_text("done")
    j.capture(page, "record-in-treatment")


def discharge_by_keyboard(
    page, j: Journey, reason: str, summary: str, *, cancel_boosters: bool = False
) -> None:
    """Discharge with the keyboard alone. Boosters the client chose are never cancelled
    silently: the form asks, and `cancel_boosters` ticks that box with the space bar."""
    page.get_by_role("link", name="Discharge…").click()
    expect(page.get_by_role("heading", name=f"Discharge {j.client.name}")).to_be_visible()
    j.capture(page, "discharge")
    for _ in range(60):  # Tab from the top of the page to the first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "d-reason":
            break
    else:
        raise AssertionError("the discharge reason cannot be reached with the Tab key")
    page.keyboard.type(reason)
    page.keyboard.press("Tab")
    page.keyboard.type(summary)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "cancel_boosters"
    if cancel_boosters:
        page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Discharge"
    page.keyboard.press("Enter")
    flash(page, "Client discharged.")
    expect(page.locator("main")).to_contain_text("was discharged")
    expect(page.locator("#discharge")).to_contain_text(summary[-30:])
    for write in ("Add note", "Set task", "Change phase"):
        expect(page.get_by_role("button", name=write)).to_have_count(0)
    j.capture(page, "record-discharged")


def resend_the_first_link(page, j: Journey, record_url: str, first: datetime, inbox) -> str:
    """Reception resends session 1's questionnaire link (it goes out by itself 48 hours
    before the session, later than these tests wait when the course starts after a weekend);
    the newest link `inbox()` (the links the client received on one channel, oldest first)
    holds afterwards."""
    page.goto(record_url)
    page.get_by_role("link", name="Questionnaire links").click()
    resend = page.get_by_role("button", name=f"Resend link for {first.strftime(SHOWN)}")
    until_shown(page, lambda: resend.count() == 1, "session 1's questionnaire to resend")
    j.capture(page, "questionnaire-links")
    before = len(inbox())
    resend.click()
    flash(page, "being sent again")
    deadline = time.monotonic() + 240
    while len(inbox()) <= before:
        assert time.monotonic() < deadline, f"no resent link reached {j.client.given}"
        time.sleep(0.5)
    return inbox()[-1]


def answer_on_a_phone(browser, j: Journey, link: str, answer) -> None:
    """The client opens the link on a phone-sized page and answers every item:
    `answer(item)` is the option chosen for each item, named as the form names its
    fieldsets ("PHQ-9-9" is the PHQ-9's item 9)."""
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="Europe/London", is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.locator("h1")).to_contain_text("Questionnaires before your session")
        j.capture(page, "questionnaire")
        page.set_viewport_size(PHONE)
        fieldsets = page.locator("form fieldset")
        assert fieldsets.count() >= 9, page.inner_text("body")[:2000]
        for fieldset in fieldsets.all():
            item = fieldset.get_attribute("id")
            page.locator(f"input[id='{item}-{answer(item)}']").check()
        page.get_by_role("button", name="Send my answers").click()
        expect(page.locator("h1")).to_contain_text("Thank you")
        j.capture(page, "questionnaire-thanks")
    finally:
        context.close()


def book_boosters(page, j: Journey, record_url: str, after: datetime) -> list[datetime]:
    """A booster series from the Book page, starting a fortnight after the course's last
    session: two sessions, every two months (the default)."""
    page.goto(record_url)
    page.get_by_role("link", name="Book for this client").click()
    choose_on_the_book_page(page, j, (after + timedelta(days=14)).date())
    page.locator("input[name=slot]").first.check()
    page.get_by_role("radio", name="A booster series").check()
    page.get_by_label("Booster sessions (booster series)").fill("2")
    assert page.get_by_label("Every (months) (booster series)").input_value() == "2"
    j.capture(page, "book-boosters")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("heading", name="Booster series booked")).to_be_visible()
    expect(page.locator("main")).to_contain_text("2 of 2 booster sessions booked, every 2 month(s)")
    j.capture(page, "boosters-booked")
    first, second = booked_times(page)
    assert first.date() > after.date() and 55 <= (second - first).days <= 66, (first, second)
    return [first, second]
