"""What the browser tests share: signing in through the form, and waiting for a check."""

from __future__ import annotations

import time

from .conftest import PASSWORD


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
    page.wait_for_load_state()
    assert "/sign-in" not in page.url, page.content()[:2000]
