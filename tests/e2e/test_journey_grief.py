"""A grief journey in the browser, driving only the portal (issue 13).

Walter (made up, like the practice page's John: depression after his wife's death) is
registered by reception, assessed, formulated with grief as the problem area and his late
wife in the interpersonal inventory, and booked for a 16-session course, whose confirmation
reaches his inbox. His questionnaire link is resent by reception and answered on a
phone-sized page with the PHQ-9's risk item above 0: the alert reaches his therapist's and
the clinical lead's risk inbox, and the therapist acknowledges it. Session 1 is attended,
answers are entered in the room for it, a note is written and homework set and done; the
phase moves initial -> middle -> ending; after the course a booster series (every 2 months)
is booked on the Book page and its confirmation reaches his inbox; then he is discharged.
The shared steps are tests/e2e/journey.py's; after every save the test asserts what the page
shows, and every page is screenshotted at 1280 and 390 px (tests/artifacts/grief-*) and
checked with axe-core."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from playwright.sync_api import expect

from . import journey as step
from .journey import Client, Journey, Person, staff  # noqa: F401 (a fixture)
from .ui import eventually, mail_links, mail_to, sign_in, text_of

pytestmark = pytest.mark.browser
expect.set_options(timeout=60_000)  # saves wait on the services (see test_journey.py)
WALTER = Client(
    "Walter",
    "Ainsworth",
    "1957-04-22",
    "walter.ainsworth@example.test",
    "07700 900888",
    "tom-reid",
    "Mr Tom Reid",
    texts=False,
)
THERAPIST, LEAD = "therapist2@rapport.test", "lead@rapport.test"
MAILED = "%A %-d %B %Y at %H:%M"  # how the confirmations write a time (notifications' `when`)


def test_walter_grief_from_registration_to_boosters_and_discharge(
    stack,
    staff,  # noqa: F811
    new_page,
    browser,
):
    j = Journey("grief", WALTER)
    reception, therapist, lead = new_page(), new_page(), new_page()
    sign_in(reception, stack, "reception@rapport.test")
    sign_in(therapist, stack, THERAPIST)
    sign_in(lead, stack, LEAD)

    record_url = step.register(reception, j, referred_by="GP after a bereavement review")
    client_id = record_url.rstrip("/").rsplit("/", 1)[-1]
    therapist.goto(record_url)
    step.assess(
        therapist,
        j,
        "Low mood, poor sleep and withdrawal from friends since his wife Margaret died in March",
        ["Depression"],
        ["Sleep through the night", "Go back to the bowls club"],
        "Passive thoughts that life is not worth living since the death; no plan; daughter "
        "visits daily",
    )
    step.formulate(
        therapist,
        j,
        "Grief",
        "Depression following the death of his wife of 41 years; he has not been able to talk "
        "about her or the last months of her illness",
        [
            Person(
                "Margaret",
                "late wife (died in March)",
                "Inner",
                "41 years together; she kept their friendships going",
                "he could not say goodbye",
            ),
            Person("Helen", "daughter", "Inner", "visits every day", "he hides how he feels"),
            Person("Frank", "friend from the bowls club", "Middle", "rings weekly", "not seen"),
        ],
        ["Talk about Margaret and her illness", "Rebuild his week with friends"],
    )
    step.change_phase(therapist, j, "Initial")

    course = step.book_the_course(reception, j, record_url, weekly_day_clear_of_leave())
    confirmation(stack, "We have booked 16 appointments for you, every week.", course)
    link = step.resend_the_first_link(
        reception, j, record_url, course[0], lambda: mail_links(stack, WALTER.email)
    )
    step.answer_on_a_phone(browser, j, link, lambda item: 1)  # item 9 at 1: a risk
    for page, who in ((therapist, "therapist"), (lead, "lead")):
        alert_in_the_risk_inbox(page, j, client_id, who)
    acknowledge(therapist, j, client_id)

    step.attend_session_one(therapist, stack, j, record_url)
    enter_answers_in_the_room(therapist, j)
    therapist.goto(record_url)
    step.write_a_note(
        therapist, "Walter talked about Margaret's last week in the hospice for the first time."
    )
    step.set_homework_and_mark_it_done(
        therapist, j, "Look through the photo albums with Helen", "Cried, but glad he did"
    )
    step.change_phase(therapist, j, "Middle")
    step.change_phase(therapist, j, "Ending")

    boosters = step.book_boosters(reception, j, record_url, after=course[-1])
    confirmation(
        stack, "We have booked 2 follow-up appointments for you, one every 2 months.", boosters
    )
    therapist.goto(record_url)
    step.until_shown(
        therapist,
        lambda: therapist.locator("#sessions tbody tr", has_text="Booster").count() == 2,
        "the two boosters on Walter's record",
    )
    # Walter moves to his daughter's: his boosters go too, which the therapist must say
    # (a discharge never cancels the boosters a client chose without being told to)
    step.discharge_by_keyboard(
        therapist,
        j,
        "Moving to live near his daughter; boosters cancelled at his request",
        "Able to talk about Margaret; back at the bowls club; depression lifted.",
        cancel_boosters=True,
    )


def weekly_day_clear_of_leave() -> date:
    """From tomorrow, the first Tuesday or Friday: the e2e stack is shared, and the diary
    test records Tom's leave for next week's Wednesday and Thursday and books him a booster
    series from the Monday after at his first free hour, every two months, both of which a
    weekly course on those days would meet (the Book page then books 14 or 15 of 16); the
    rooms test books his next Monday."""
    day = date.today() + timedelta(days=1)
    while day.weekday() not in (1, 4):
        day += timedelta(days=1)
    return day


def confirmation(stack, opening: str, times: list[datetime]) -> None:
    """The client's inbox has the confirmation, listing every time booked."""
    wanted = [t.strftime(MAILED) for t in times]

    def received():
        return [
            text_of(m)
            for m in mail_to(stack, WALTER.email)
            if opening in text_of(m) and all(w in text_of(m) for w in wanted)
        ]

    eventually(received, what=f"{opening!r} listing {wanted} in Walter's inbox")


def alert_in_the_risk_inbox(page, j: Journey, client_id: str, who: str) -> None:
    alert = page.locator("article.alert", has=page.locator(f"a[href='/clients/{client_id}']"))

    def shown() -> bool:
        page.get_by_role("link", name="Risk inbox").click()
        return alert.count() == 1

    eventually(shown, what=f"Walter's alert in the {who}'s risk inbox")
    expect(alert).to_contain_text(WALTER.name)
    expect(alert).to_contain_text("PHQ-9 item 9 answered 1")
    j.capture(page, f"risk-inbox-{who}")


def acknowledge(page, j: Journey, client_id: str) -> None:
    """The therapist records what was done; the alert moves to Acknowledged at once."""
    alert = page.locator("article.alert", has=page.locator(f"a[href='/clients/{client_id}']"))
    alert.get_by_label("What was done").fill("Rang Walter: passive thoughts, no plan; safety plan")
    alert.get_by_role("button", name="Acknowledge").click()
    step.flash(page, "Alert acknowledged.")
    expect(alert).to_have_count(0)
    done = page.get_by_role("region", name="Acknowledged alerts").locator(
        "tr", has_text=WALTER.name
    )
    expect(done).to_contain_text("safety plan")
    j.capture(page, "risk-acknowledged")


def enter_answers_in_the_room(page, j: Journey) -> None:
    """The PHQ-9 on paper in session 1, entered for that session (chosen by default)."""
    page.get_by_role("link", name="Measures", exact=True).click()
    entry = page.locator("#enter")
    expect(entry.get_by_label("Session").locator("option:checked")).to_contain_text("Session 1,")
    for n in range(1, 10):
        answer = "0 Not at all" if n == 9 else "1 Several days"
        entry.locator(f"fieldset[id='answers.PHQ-9.{n}']").get_by_label(answer).check()
    j.capture(page, "measures-entry")
    entry.get_by_role("button", name="Save answers").click()
    step.flash(page, "Answers saved: PHQ-9 8 (mild).")
    scores = page.locator("#chart-phq9 tbody tr")  # the link's 9, then the room's 8
    expect(scores).to_have_count(2)
    expect(scores.last).to_contain_text("Session 1,")
    expect(scores.last).to_contain_text("mild")
    j.capture(page, "measures-saved")
