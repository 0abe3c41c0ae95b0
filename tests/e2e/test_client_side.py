"""The client's side of the practice as one walk in the browser (issue 17, "Done when"),
driving only the pages and reading only what the person is sent (the stack's mail server):

Nadia gets in touch from a phone-sized page → reception puts her on the waiting list and
offers assessment times by link → she books one on her phone → the confirmation reaches
her, with the time and how it will happen, before she is registered → reception registers
her with nothing retyped → a 16-session video course is booked → before session 2 she writes
two diary entries and marks her task done on the homework page from the task reminder → her
therapist reads them on her record → reception sends her own link for session 3, she moves
it on her phone, and the notice of the move brings her link to the session's new video room,
whose Jitsi token names that room, her, and the new times (PyJWT) → the course is completed →
boosters → discharge. Screenshots at 1280 and 390 px, axe-core on every page
(tests/artifacts/chain-*). Dr Sarah Okafor is her therapist (the diary test puts Tom Reid on
leave), and the course starts ten days ahead in the last free slot the Book page lists, clear
of the other journeys' courses on the shared stack."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from playwright.sync_api import expect

from services.scheduling.app import DEMO_JITSI_SECRET

from . import journey as step
from . import journey_client as client_step
from .journey import LONDON, SHOWN, Client, Journey, staff  # noqa: F401 (a fixture)
from .ui import eventually, mail_to, sign_in, text_of

pytestmark = pytest.mark.browser
expect.set_options(timeout=60_000)  # saves wait on the services (see test_journey.py)
NADIA = Client(
    "Nadia",
    "Rahman",
    "1986-09-14",
    "nadia.rahman@example.test",
    "07700 900717",
    "sarah-okafor",
    "Dr Sarah Okafor",
)
CONCERN = (
    "Since I started my new job my husband and I argue every evening and I cannot sleep; "
    "writing down important events or feelings helps a little"
)
TASK = "practising a difficult conversation"
ENTRIES = [
    "writing down important events or feelings: Tuesday's row about the shopping",
    "I asked Sami to do the school run twice this week and he agreed",
]
REFLECTION = "I practised what I would say, then said it calmly"
MAILED = "%A %-d %B %Y at %H:%M"  # how the messages write a time (notifications' `when`)


def mailed(pattern: str, subject: str | None = None):
    """A function finding the first `pattern` match in Nadia's mail (optionally only in
    messages whose subject starts with `subject`), for `eventually`."""

    def find(stack):
        for message in mail_to(stack, NADIA.email):
            if subject and not str(message["Subject"]).startswith(subject):
                continue
            found = re.search(pattern, text_of(message))
            if found:
                return found.group(0), text_of(message)
        return None

    return find


def room_claims(link: str) -> dict:
    token = parse_qs(urlsplit(link).query)["jwt"][0]
    # the session is days ahead: its door (nbf) is not open yet; the times are checked
    return jwt.decode(
        token,
        DEMO_JITSI_SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_nbf": False},
    )


def test_from_an_enquiry_on_a_phone_to_discharge_through_the_clients_own_pages(
    stack,
    staff,  # noqa: F811
    new_page,
    browser,
):
    portal = stack.urls["portal"]
    j = Journey("chain", NADIA)
    person, reception, therapist = new_page(), new_page(), new_page()
    sign_in(reception, stack, "reception@rapport.test")
    sign_in(therapist, stack, "therapist1@rapport.test")  # Dr Sarah Okafor

    # 1. the enquiry, the waiting list and the offer of assessment times by link
    client_step.enquire_on_a_phone(person, j, portal, CONCERN, "By video")
    offered = client_step.waiting_list_then_offer(reception, j, CONCERN)
    link, _ = eventually(
        lambda: mailed(r"https?://\S+/book-online/[\w-]+")(stack), what="the booking link"
    )
    assert link.startswith(f"{portal}/book-online/")
    assert link.rsplit("/", 1)[-1] not in reception.content()  # staff never see it

    # 2. she books the second time on her phone; the confirmation says when and how
    booked = datetime.fromisoformat(
        client_step.book_by_link_on_a_phone(browser, j, link, offered, 1)
    )
    _, confirmation = eventually(
        lambda: mailed(r"https://meet\.rapport\.test/\S+", "Your first appointment")(stack),
        what="the confirmation of the booked assessment",
    )
    assert booked.astimezone(LONDON).strftime(MAILED) in confirmation
    assert "By video: https://meet.rapport.test/" in confirmation

    # 3. registered from the enquiry, nothing retyped; a 16-session video course
    record_url = client_step.register_from_the_enquiry(reception, j)
    client_id = record_url.rstrip("/").rsplit("/", 1)[-1]
    course = step.book_the_course(
        reception, j, record_url, step.first_weekday(10), how="Video", slot=-1
    )
    # the course's summary goes only once the planner knows her as a client: by then,
    # registering her has not confirmed the assessment a second time
    eventually(
        lambda: mailed("We have booked 16 appointments for you")(stack), what="the course summary"
    )
    subjects = [str(m["Subject"]) for m in mail_to(stack, NADIA.email)]
    assert len([s for s in subjects if s.startswith("Your first appointment")]) == 1
    assert not [s for s in subjects if re.match(r"Your appointment on .* is booked", s)]

    # 4. before session 2: her diary and a task done on the homework page; her therapist reads it
    client_step.set_a_task_due_soon(therapist, j, record_url, TASK)
    homework, _ = eventually(
        lambda: mailed(r"https?://\S+/homework/[\w-]+")(stack),
        what="the task reminder with the homework link",
    )
    client_step.write_the_diary_on_a_phone(browser, j, homework, TASK, ENTRIES, REFLECTION)
    client_step.the_therapist_reads_the_diary(therapist, j, record_url, ENTRIES + [REFLECTION])

    # 5. her own link to session 3: she moves it; the notice brings her link to the new room
    reception.goto(record_url)
    third = reception.locator("#sessions").get_by_role(
        "link", name=course[2].strftime(SHOWN), exact=True
    )
    step.until_shown(reception, lambda: third.count() == 1, "session 3 on Nadia's record")
    third.click()
    session_url = reception.url
    reception.get_by_role("button", name="Send the client a link to move or cancel").click()
    step.flash(reception, "A link to move or cancel this session is being sent to the client.")
    j.capture(reception, "session-link-sent")
    own, _ = eventually(
        lambda: mailed(r"https?://\S+/my-session/[\w-]+")(stack), what="her own session link"
    )
    assert own.rsplit("/", 1)[-1] not in reception.content()
    moved_to = client_step.move_by_the_clients_own_link(browser, j, own)
    when = moved_to.astimezone(LONDON).strftime(MAILED)
    room, notice = eventually(
        lambda: mailed(r"https://meet\.rapport\.test/\S+", "Your appointment has moved")(stack),
        what="the notice of the move with the new room link",
    )
    assert when in notice, notice
    hers = room_claims(room)
    assert hers["context"]["user"] == {"id": client_id, "name": "Nadia", "moderator": False}
    assert hers["nbf"] == int((moved_to - timedelta(minutes=10)).timestamp())
    assert hers["exp"] == int((moved_to + timedelta(minutes=50)).timestamp())
    therapist.goto(session_url)
    expect(therapist.locator("main")).to_contain_text(moved_to.astimezone(LONDON).strftime(SHOWN))
    theirs = room_claims(
        therapist.get_by_role("link", name="Join the video room").get_attribute("href")
    )
    assert theirs["room"] == hers["room"] and room.startswith(
        f"https://meet.rapport.test/{hers['room']}?"
    )
    assert theirs["context"]["user"]["moderator"] is True
    j.capture(therapist, "session-moved")

    # 6. the course completed, boosters, discharge
    therapist.goto(record_url)
    section = therapist.locator("#course")
    section.get_by_label("Improved").check()
    section.get_by_label("Summary (optional)").fill("Rows at home have eased; sleeping again")
    section.get_by_role("button", name="Course completed").click()
    step.flash(therapist, "Course completed.")
    expect(therapist.locator("#course")).to_contain_text("Improved: Rows at home have eased")
    j.capture(therapist, "course-completed")
    step.book_boosters(reception, j, record_url, after=course[-1])
    therapist.goto(record_url)
    step.until_shown(
        therapist,
        lambda: therapist.locator("#sessions tbody tr", has_text="Booster").count() == 2,
        "the two boosters on Nadia's record",
    )
    step.discharge_by_keyboard(
        therapist,
        j,
        "Course completed; she has decided to stop the boosters",
        "Arguments at home have eased; sleeping and back to enjoying work.",
        cancel_boosters=True,
    )
