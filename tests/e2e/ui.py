"""What the browser tests share: signing in through the form, waiting for a check, and
reading what the stack's development mail server and SMS provider received (the client's
own inbox and phone, as files in the stack's run folder)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from .conftest import PASSWORD

LINK = re.compile(r"https?://[^\s]+/q/[A-Za-z0-9_-]+")  # a questionnaire link


def due_soon(hours: int = 3) -> tuple[str, str]:
    """A date and time `hours` ahead in practice time, as the task form takes them, for
    homework whose reminder the test waits for: a task reminder goes 24 h before the time
    due, or at once when the task is set later than that, never under an hour before
    (notifications' task_reminder). "Due tomorrow" (18:00) was reminded at once only when
    the tests ran after 18:00: a daytime run waited for a reminder due that evening."""
    at = datetime.now(ZoneInfo("Europe/London")) + timedelta(hours=hours)
    return at.date().isoformat(), at.strftime("%H:%M")


def eventually(check, timeout: float = 240.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s: {what}")


def sign_in(page, stack, email: str) -> None:
    page.goto(stack.urls["portal"] + "/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert "/sign-in" not in page.url, page.content()[:2000]


def mail_to(stack, address: str) -> list:
    """Messages the dev mail server received for `address`, oldest first."""
    folder = stack.run_dir / "mail"
    found = []
    for path in sorted(folder.glob("*")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(message["To"]):
            found.append(message)
    return found


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def mail_links(stack, address: str) -> list[str]:
    """The questionnaire links mailed to `address`, oldest first."""
    return [url for m in mail_to(stack, address) for url in LINK.findall(text_of(m))]


def sms_links(stack, digits: str) -> list[str]:
    """The questionnaire links texted to a number ending in `digits`, oldest first."""
    log = stack.run_dir / "sms" / "messages.jsonl"
    if not log.exists():
        return []
    texts = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [
        url
        for t in texts
        if digits in re.sub(r"\D", "", str(t.get("to")))
        for url in LINK.findall(t["body"])
    ]
