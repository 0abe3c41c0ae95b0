"""The homework diary in headless Chromium against every real service, through the pages only
(issue 17, item 3): John's therapist sets him a task on his record; the task reminder brings
John a personal link; on his phone he sees the task, writes two diary entries (the practice
page's own examples) and marks the task done; his therapist reads them on his record.
Screenshots at 390 and 1280 px; axe-core on every page. (The stack runs without quiet
hours, so the reminder goes whatever the time of day.)"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest

from .conftest import accessibility_violations, shot
from .test_rooms_and_course import DESKTOP, PHONE, john, mail_to  # noqa: F401  (the fixture)
from .ui import due_soon, eventually, sign_in

pytestmark = pytest.mark.browser
LONDON = ZoneInfo("Europe/London")
TASK = "practising a difficult conversation"


def both_widths(page, name: str, first=PHONE) -> None:
    for size in (first, DESKTOP if first is PHONE else PHONE):
        page.set_viewport_size(size)
        label = "phone" if size is PHONE else "desktop"
        shot(page, f"homework-{name}-{label}")
        serious = accessibility_violations(page)
        assert serious == [], f"{name} ({label}): {serious}"


def test_the_client_writes_the_diary_at_the_reminders_link_and_the_therapist_reads_it(
    stack,
    john,  # noqa: F811  (the fixture, imported)
    new_page,
):
    day, by = due_soon()
    staff = new_page()
    sign_in(staff, stack, "therapist2@rapport.test")  # Mr Tom Reid, John's therapist
    staff.goto(f"{stack.urls['portal']}/clients/{john}")
    staff.get_by_label("New task").fill(TASK)
    staff.get_by_label("Due").fill(day)
    staff.get_by_label("By", exact=True).fill(by)
    staff.get_by_role("button", name="Set task").click()
    staff.wait_for_load_state()
    assert staff.get_by_text("Task set.").is_visible()

    def link():
        for message in mail_to(stack, "john.whitaker@example.test"):
            text = message.get_body(("plain",)).get_content()
            found = re.findall(r"https?://\S+(/homework/[A-Za-z0-9_-]+)", text)
            if found:
                return found[0]
        return None

    path = eventually(link, what="the task reminder with John's homework link")

    client = new_page()
    client.set_viewport_size(PHONE)
    client.goto(stack.urls["portal"] + path)
    assert client.get_by_role("heading", name="Hello John").is_visible()
    assert client.get_by_text(TASK).first.is_visible()
    assert client.get_by_role("link", name="Sign out").count() == 0
    both_widths(client, "page")

    for words in ("writing down important events or feelings", "Ray asked me to play doubles"):
        client.get_by_label("What happened, and how did you feel?").fill(words)
        client.get_by_role("button", name="Save in my diary").click()
        client.wait_for_load_state()
        assert client.get_by_text("Saved in your diary.").is_visible()
    client.get_by_label("How did it go? (optional)").fill("I told David how I feel about Margaret")
    client.get_by_role("button", name="Mark as done").click()
    client.wait_for_load_state()
    assert client.get_by_text("Marked as done. Well done.").is_visible()
    assert client.get_by_text("Done: I told David how I feel about Margaret").is_visible()
    both_widths(client, "written")

    staff.goto(f"{stack.urls['portal']}/clients/{john}")
    diary = staff.locator("#diary")
    assert "writing down important events or feelings" in diary.inner_text()
    assert "Ray asked me to play doubles" in diary.inner_text()
    assert "I told David how I feel about Margaret" in diary.inner_text()
    both_widths(staff, "record", first=DESKTOP)
