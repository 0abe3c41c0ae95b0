"""A client's whole IPT journey in the browser, driving only the portal (issue 13).

Grace (made up, like the practice page's Emma: depression with a role dispute with her
husband) is registered by reception, has her phone number corrected and is found by it,
is assessed, formulated with her husband seen unilaterally in the interpersonal inventory,
booked for a 16-session course on the Book page, answers session 1's questionnaires on her
phone from the link texted to her corrected number (no risk: the PHQ-9 at 16, moderately
severe, on the therapist's Measures page), is seen for session 1 (attended, a note,
homework set and done), moved initial -> middle -> ending, and discharged with an outcome
summary, by keyboard. The steps are tests/e2e/journey.py's; after every save they assert
what the page shows, and every page is screenshotted at desktop (1280) and phone (390)
widths into tests/artifacts/journey-* and checked with axe-core (no serious or critical
violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from . import journey as step
from .journey import Client, Journey, Person, staff  # noqa: F401 (a fixture)
from .ui import sign_in, sms_links

pytestmark = pytest.mark.browser
# Saves wait on the services (a 16-session course takes seconds on a shared 2-core machine):
# page assertions wait as long as page actions do (conftest's default timeout).
expect.set_options(timeout=60_000)
GRACE = Client(
    "Grace",
    "Whitfield",
    "1980-09-14",
    "grace.whitfield@example.test",
    "07700 900123",
    "sarah-okafor",
    "Dr Sarah Okafor",
)
NEW_PHONE = "07700 900456"


def test_grace_from_registration_to_discharge(stack, staff, new_page, browser):  # noqa: F811
    j = Journey("journey", GRACE)
    reception, therapist = new_page(), new_page()
    sign_in(reception, stack, "reception@rapport.test")
    sign_in(therapist, stack, "therapist1@rapport.test")

    record_url = step.register(reception, j, referred_by="GP")
    correct_the_phone(reception, j)
    find_by_phone(reception, j)
    therapist.goto(record_url)
    step.assess(
        therapist,
        j,
        "Low mood since starting a new job as a care assistant; overeating, poor sleep, "
        "irritability",
        ["Depression"],
        ["Feel like myself again", "More help at home"],
        "No thoughts of self-harm; her three children are protective",
    )
    step.formulate(
        therapist,
        j,
        "Role dispute",
        "Depression linked to a non-reciprocal role expectation with her husband since the new job",
        [
            Person(
                "Daniel",
                "husband",
                "Inner",
                "loyal, funny",
                "expects her to run the house",
                unilateral=True,
            ),
            Person("Sue", "sister", "Middle", "listens", "lives far away"),
            None,  # an empty row is skipped
            Person("Maya", "eldest daughter", "Inner", "helps with the little ones", ""),
        ],
        ["Negotiate the housework", "Say what she needs without a row"],
    )
    step.change_phase(therapist, j, "Initial")
    course = step.book_the_course(reception, j, record_url, step.first_weekday(3))
    answer_the_texted_link(reception, therapist, stack, browser, j, record_url, course[0])
    step.attend_session_one(therapist, stack, j, record_url)
    step.write_a_note(
        therapist, "Grace described the rows about the school run; agreed to map who does what."
    )
    step.set_homework_and_mark_it_done(
        therapist, j, "Ask Daniel to do two school runs this week", "He said yes to one"
    )
    step.change_phase(therapist, j, "Middle")
    step.change_phase(therapist, j, "Ending")
    step.discharge_by_keyboard(
        therapist,
        j,
        "Course complete",
        "Better communication with Daniel, more help at home; depression lifted.",
    )


def correct_the_phone(page, j: Journey) -> None:
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Mobile").fill(NEW_PHONE)
    page.get_by_label("Reason for the change").fill("Grace rang with a new mobile number")
    j.capture(page, "edit-details")
    page.get_by_role("button", name="Save the details").click()
    step.flash(page, "Details corrected.")
    expect(page.locator("#details")).to_contain_text(NEW_PHONE)


def find_by_phone(page, j: Journey) -> None:
    """The client list is records' projection; reception's own correction shows at once."""
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_label("Search").fill("+44 7700 900456")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("main table tbody tr", has_text="Grace Whitfield")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Dr Sarah Okafor")  # a name, not the therapist's id
    j.capture(page, "clients-search")


def answer_the_texted_link(reception, therapist, stack, browser, j, record_url, first) -> None:
    """Reception resends session 1's link; Grace opens the one texted to her new number
    on her phone and answers: the PHQ-9 at 2 ("more than half the days") on items 1-8 and 0
    on item 9, everything else at 1. Her therapist sees the PHQ-9 of 16 (moderately severe)."""
    texted = lambda: sms_links(stack, NEW_PHONE.replace(" ", "")[1:])  # noqa: E731
    link = step.resend_the_first_link(reception, j, record_url, first, texted)
    step.answer_on_a_phone(
        browser,
        j,
        link,
        lambda item: (0 if item == "PHQ-9-9" else 2) if item.startswith("PHQ-9-") else 1,
    )
    therapist.goto(record_url)
    therapist.get_by_role("link", name="Measures", exact=True).click()
    scores = therapist.locator("#chart-phq9 tbody tr")
    step.until_shown(therapist, lambda: scores.count() == 1, "Grace's PHQ-9 on Measures")
    expect(scores.first).to_contain_text("16")
    expect(scores.first).to_contain_text("moderately severe")
    j.capture(therapist, "measures-from-phone")
