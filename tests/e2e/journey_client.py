"""The client's side of a journey in the portal (issue 17), shared by the browser tests as
journey.py's steps are: a person gets in touch on a phone, reception offers assessment times
by link and registers them from the enquiry; the homework page from the task reminder; the
client's own link to move a session. Each step drives only the pages and captures what it
shows (`Journey.capture`: desktop and phone widths, axe-core)."""

from __future__ import annotations

import re
from datetime import datetime

from playwright.sync_api import expect

from .journey import PHONE, Journey, flash, until_shown
from .ui import due_soon


def set_a_task_due_soon(page, j: Journey, record_url: str, task: str) -> None:
    """The therapist sets homework due in a few hours: its reminder brings the client the
    link to their homework page at once (notifications' task_reminder; ui.due_soon)."""
    page.goto(record_url)
    tasks = page.locator("#tasks")
    tasks.get_by_label("New task").fill(task)
    day, by = due_soon()
    tasks.get_by_label("Due").fill(day)
    tasks.get_by_label("By", exact=True).fill(by)
    tasks.get_by_role("button", name="Set task").click()
    flash(page, "Task set.")
    expect(page.locator("#tasks li", has_text=task)).to_be_visible()


def write_the_diary_on_a_phone(
    browser, j: Journey, link: str, task: str, entries: list[str], reflection: str
) -> None:
    """On the homework page from the reminder's link, on a phone: the open task shown, two
    diary entries written, the task marked done with a reflection."""
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="Europe/London", is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", name=f"Hello {j.client.given}")).to_be_visible()
        expect(page.get_by_text(task).first).to_be_visible()
        assert page.get_by_role("link", name="Sign out").count() == 0
        j.capture(page, "homework")
        for words in entries:
            page.get_by_label("What happened, and how did you feel?").fill(words)
            page.get_by_role("button", name="Save in my diary").click()
            expect(page.get_by_text("Saved in your diary.")).to_be_visible()
        page.get_by_label("How did it go? (optional)").fill(reflection)
        page.get_by_role("button", name="Mark as done").click()
        expect(page.get_by_text("Marked as done. Well done.")).to_be_visible()
        expect(page.get_by_text(f"Done: {reflection}")).to_be_visible()
        j.capture(page, "homework-written")
    finally:
        context.close()


def the_therapist_reads_the_diary(page, j: Journey, record_url: str, words: list[str]) -> None:
    page.goto(record_url)
    diary = page.locator("#diary")
    for text in words:
        expect(diary).to_contain_text(text)
    j.capture(page, "record-diary")


# -- the client's side: from an enquiry to a registered client (issue 17) -----------------
def enquire_on_a_phone(page, j: Journey, url: str, concern: str, how: str) -> None:
    """A person gets in touch on a phone-sized page: contact by e-mail, meeting `how` ("By
    video", ...), consent given. The form refuses what is sent faster than a person types."""
    c = j.client
    page.set_viewport_size(PHONE)
    page.goto(url + "/enquire")
    expect(page.get_by_role("heading", name="Get in touch")).to_be_visible()
    j.capture(page, "enquire")
    page.set_viewport_size(PHONE)
    page.get_by_label("First name").fill(c.given)
    page.get_by_label("Last name").fill(c.family)
    page.get_by_label("Phone number").fill(c.phone)
    page.get_by_label("E-mail address (if you would like us to write)").fill(c.email)
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_label("What is troubling you?").fill(concern)
    page.get_by_label(how, exact=True).check()
    page.get_by_label("How did you hear of us? (optional)").fill("the practice's website")
    page.get_by_label("I agree to the practice contacting me about this enquiry").check()
    page.wait_for_timeout(3500)  # a person takes longer than the form's minimum fill time
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you for getting in touch")).to_be_visible()
    j.capture(page, "enquire-thanks")


def waiting_list_then_offer(page, j: Journey, concern: str, count: int = 3) -> list[str]:
    """Reception finds the enquiry in the inbox, puts the person on the waiting list, and
    offers `count` assessment times of the client's therapist by link; the times offered."""
    page.get_by_role("link", name="Enquiries", exact=True).click()
    row = page.locator("#inbox").get_by_role("link", name=j.client.name)
    until_shown(page, lambda: row.count() == 1, f"{j.client.name} in the enquiries inbox")
    j.capture(page, "enquiries-inbox")
    row.click()
    expect(page.locator("main")).to_contain_text(concern[:40])
    page.get_by_label("Priority").select_option("soon")
    page.get_by_role("button", name="Add to waiting list").click()
    expect(page.get_by_text("soon priority, 0 weeks waiting")).to_be_visible()
    with page.expect_navigation():  # the choice is shown at once (portal.js)
        page.get_by_label("Therapist", exact=True).first.select_option(label=j.client.therapist)
    boxes = page.locator('#form-offer input[name="starts"]')
    expect(boxes.nth(count - 1)).to_be_visible()
    offered = [boxes.nth(n).get_attribute("value") for n in range(count)]
    for n in range(count):
        boxes.nth(n).check()
    j.capture(page, "enquiry-offer")
    page.get_by_role("button", name="Send these times by link").click()
    expect(page.get_by_text(f"{count} time(s) sent to the person by link")).to_be_visible()
    return offered


def book_by_link_on_a_phone(browser, j: Journey, link: str, offered: list[str], n: int) -> str:
    """The person opens the link they were sent and books the `n`th time offered; the
    link is spent afterwards. The time booked (as offered)."""
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="Europe/London", is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", name=re.compile("Choose a time"))).to_be_visible()
        radios = page.locator('input[name="starts_at"]')
        assert [radios.nth(i).get_attribute("value") for i in range(radios.count())] == offered
        j.capture(page, "book-online")
        page.set_viewport_size(PHONE)
        radios.nth(n).check()
        page.get_by_role("button", name="Book this time").click()
        expect(page.get_by_role("heading", name="Your appointment is booked")).to_be_visible()
        j.capture(page, "booked-online")
        page.goto(link)
        expect(page.get_by_role("heading", name="This link is not valid any more")).to_be_visible()
    finally:
        context.close()
    return offered[n]


def register_from_the_enquiry(page, j: Journey) -> str:
    """Reception registers the person from the enquiry: only the date of birth is typed,
    everything else carried over; the record's URL."""
    c = j.client
    until_shown(
        page,
        lambda: page.get_by_text("Assessment booked").count() > 0,
        "the booked assessment on the enquiry",
    )
    page.get_by_label("Date of birth").fill(c.born)
    page.get_by_label("Therapist", exact=True).last.select_option(label=c.therapist)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(c.name))).to_be_visible()
    assert "/clients/" in page.url
    details = page.locator("#details")
    expect(details).to_contain_text(c.phone)
    expect(details).to_contain_text(c.email)
    j.capture(page, "registered-from-enquiry")
    return page.url.split("#")[0]


def move_by_the_clients_own_link(browser, j: Journey, link: str) -> datetime:
    """The client opens their own link to one session on a phone and moves it to the first
    free time shown; the new time."""
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", timezone_id="Europe/London", is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", name="Your appointment")).to_be_visible()
        j.capture(page, "my-session")
        page.set_viewport_size(PHONE)
        first = page.locator('input[name="starts_at"]').first
        chosen = datetime.fromisoformat(first.get_attribute("value"))
        first.check()
        page.get_by_role("button", name="Move my appointment").click()
        expect(page.get_by_role("heading", name="Your appointment has moved")).to_be_visible()
        j.capture(page, "my-session-moved")
        page.goto(link)
        expect(page.get_by_role("heading", name="This link is not valid any more")).to_be_visible()
    finally:
        context.close()
    return chosen
