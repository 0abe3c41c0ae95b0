"""The diary grid, the Book page (sessions, courses, booster series), the session page and a
therapist's hours and leave, against stand-in services: what each shows, what it sends, and
that bad input or a refusal brings the form back with the reason beside the field."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
HOURS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
THERAPISTS = [
    {
        "therapist_id": "t-1",
        "name": "Dr Sarah Okafor",
        "rooms": ["Room 1"],
        "weekly_hours": HOURS,
        "exceptions": [],
    },
    {
        "therapist_id": "t-2",
        "name": "Mr Tom Reid",
        "rooms": ["Room 2"],
        "weekly_hours": HOURS,
        "exceptions": [
            {"start_date": "2030-01-08", "end_date": "2030-01-09", "reason": "Annual leave"}
        ],
    },
]
EMMA = {
    "client_id": "c-1",
    "given_name": "Emma",
    "family_name": "Hart",
    "therapist_id": "t-1",
    "status": "active",
}
# Monday 7 January 2030, 10:00 UK time (GMT)
SESSION = {
    "session_id": "s-1",
    "client_id": "c-1",
    "therapist_id": "t-1",
    "kind": "assessment",
    "modality": "video",
    "room": None,
    "starts_at": "2030-01-07T10:00:00+00:00",
    "ends_at": "2030-01-07T10:50:00+00:00",
    "status": "booked",
    "number": None,
    "client_name": "Emma Hart",
    "video_link": "https://video.example.test/s-1",
}


def _diary(services, sessions_t1=(), sessions_t2=()):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET", "/therapists/t-1/diary", {"therapist_id": "t-1", "sessions": list(sessions_t1)}
    )
    services.on(
        "GET", "/therapists/t-2/diary", {"therapist_id": "t-2", "sessions": list(sessions_t2)}
    )


def test_a_failing_therapist_list_says_the_diary_is_unavailable_not_that_there_are_no_therapists(
    signed_in, services
):
    # issue 13, defect 1: scheduling answered 500 and the portal said "No therapists are
    # registered yet"
    services.on(
        "GET",
        "/therapists",
        {"title": "Internal Server Error", "status": 500, "detail": "boom"},
        status=500,
    )
    for path in ("/diary", "/book"):
        html = signed_in("admin").get(path).get_data(as_text=True)
        assert "diary is unavailable" in html, path
        assert "No therapists are registered" not in html, path


def test_the_week_grid_puts_therapists_side_by_side_with_sessions_leave_and_free_slots(
    signed_in, services
):
    missed = {
        **SESSION,
        "session_id": "s-2",
        "kind": "treatment",
        "number": 3,
        "modality": "face_to_face",
        "room": "Room 1",
        "starts_at": "2030-01-08T14:00:00+00:00",
        "ends_at": "2030-01-08T14:50:00+00:00",
        "status": "missed",
    }
    cancelled = {
        **SESSION,
        "session_id": "s-3",
        "starts_at": "2030-01-09T11:00:00+00:00",
        "ends_at": "2030-01-09T11:50:00+00:00",
        "status": "cancelled",
        "cancelled_by": "client",
    }
    _diary(services, [SESSION, missed, cancelled])
    r = signed_in("admin").get("/diary?date=2030-01-09&view=week&therapist=t-1&therapist=t-2")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    # Monday to Friday (no weekend hours), two therapists each day: ten columns, in order
    assert 'class="tgrid cols-10"' in html
    heads = re.findall(
        r'<h3 class="colhead (c\d+)[^"]*"[^>]*>\s*<strong>([^<]+)</strong>\s*'
        r'<span class="tname">([^<]+)',
        html,
    )
    assert heads[:3] == [
        ("c1", "Mon 7 Jan", "Dr Sarah Okafor"),
        ("c2", "Mon 7 Jan", "Mr Tom Reid"),
        ("c3", "Tue 8 Jan", "Dr Sarah Okafor"),
    ]
    # the grid starts at 08:00 in 10-minute rows: 10:00 is row 12, a 50-minute session ends
    # before row 17
    block = re.search(
        r'<a class="appt c1 r12 e17 kind-assessment status-booked" href="/sessions/s-1">(.*?)</a>',
        html,
        re.S,
    )
    assert (
        block
        and "Emma Hart" in block.group(1)
        and "10:00–10:50" in block.group(1)
        and "Booked" in block.group(1)
    )
    assert re.search(r'class="appt c3 r36 e41 kind-treatment status-missed"', html)
    assert "Did not attend" in html  # status as words, not colour alone
    # Tom's leave on Tuesday and Wednesday fills his columns there, with the reason
    assert re.search(r'class="leave c4 r0 e\d+"', html) and "Annual leave" in html
    # a free hour links to the Book page with therapist, date and time filled in
    assert 'href="/book?therapist=t-1&amp;date=2030-01-07&amp;time=11:00"' in html
    assert not re.search(r'class="free c1 r12 ', html)
    # a cancelled session is listed under the grid, not drawn over a rebooked slot
    assert not re.search(r'class="appt [^"]*status-cancelled', html)
    assert "Cancelled in this week" in html and "cancelled by client" in html
    assert services.last("GET", "/therapists/t-2/diary")["args"] == {
        "date": "2030-01-09",
        "view": "week",
    }


def test_today_is_marked_and_a_therapist_sees_only_their_own_column(signed_in, services):
    now = datetime.now(LONDON)
    _diary(services)
    html = (
        signed_in("therapist")
        .get(f"/diary?date={now.date().isoformat()}&view=day&therapist=t-2")
        .get_data(as_text=True)
    )
    assert 'class="tgrid cols-1"' in html and 'aria-current="date"' in html
    assert not [c for c in services.calls if c["path"] == "/therapists/t-2/diary"]
    if 8 <= now.hour < 17 and now.minute % 10 < 9:
        assert f'aria-label="Now, {now.strftime("%H:%M")[:4]}' in html


def test_bad_dates_in_the_address_show_the_page_with_the_reason_beside_the_field(
    signed_in, services
):
    # issue 15 #8: these were 500s
    _diary(services)
    services.on("GET", "/slots", [])
    services.on("GET", "/clients", {"items": [EMMA]})
    client = signed_in("admin")
    for path, form in (
        ("/diary?date=0001-01-01", "diary-filter"),
        ("/book?date=9999-12-31", "book-filter"),
        ("/diary?date=yesterday", "diary-filter"),
    ):
        r = client.get(path)
        html = r.get_data(as_text=True)
        assert r.status_code == 400, path
        assert f'id="{form}-date-error"' in html and (
            "between 2000 and 2099" in html or "YYYY-MM-DD" in html
        ), path
        assert f'aria-describedby="{form}-date-error"' in html


def _book_page(client, services, query="?therapist=t-1&date=2030-01-07"):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/slots",
        [
            {
                "starts_at": "2030-01-07T10:00:00+00:00",
                "ends_at": "2030-01-07T10:50:00+00:00",
                "rooms": ["Room 1"],
            },
            {
                "starts_at": "2030-01-07T11:00:00+00:00",
                "ends_at": "2030-01-07T11:50:00+00:00",
                "rooms": ["Room 1"],
            },
        ],
    )
    services.on("GET", "/clients", {"items": [EMMA]})
    return client.get("/book" + query).get_data(as_text=True)


def _form(html: str, action: str) -> dict:
    form = html.split(f'method="post" action="{action}"', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_free_slot_from_the_diary_is_chosen_on_the_book_page(signed_in, services):
    html = _book_page(signed_in("admin"), services, "?therapist=t-1&date=2030-01-07&time=11:00")
    assert re.search(r'value="2030-01-07T11:00:00\+00:00\|Room 1" checked', html)
    assert re.search(r'name="what" value="session" checked', html)


def test_bad_booking_input_comes_back_beside_each_field_and_nothing_is_sent(signed_in, services):
    client = signed_in("admin")
    page = _book_page(client, services)
    hidden = _form(page, "/book")
    for field, value, reason in (
        ("count", "abc", "whole number"),
        ("interval_weeks", "1.5", "whole number"),
        ("slot", "garbage", "not one of the free slots"),
    ):
        data = {
            **hidden,
            "client_id": "c-1",
            "therapist_id": "t-1",
            "modality": "face_to_face",
            "what": "course",
            "slot": "2030-01-07T10:00:00+00:00|Room 1",
            "count": "16",
            "interval_weeks": "1",
            field: value,
        }
        r = client.post("/book", data=data)
        html = r.get_data(as_text=True)
        assert r.status_code == 422, (field, r.status_code)
        assert f'id="book-{field}-error"' in html and reason in html, field
        if field != "slot":
            assert f'value="{value}"' in html  # what was typed is kept
        assert re.search(r'<option value="c-1" selected>', html)  # and the client chosen
    assert not [c for c in services.calls if c["method"] == "POST"]


def test_a_booster_series_is_booked_with_a_count_and_an_interval_in_months(signed_in, services):
    client = signed_in("admin")
    hidden = _form(_book_page(client, services), "/book")
    booster = {**SESSION, "kind": "booster", "modality": "face_to_face", "room": "Room 1"}
    services.on(
        "POST",
        "/boosters",
        {
            "course_id": "p-1",
            "sessions": [
                booster,
                {**booster, "session_id": "s-9", "starts_at": "2030-03-04T10:00:00+00:00"},
            ],
            "unbooked": [],
        },
        status=201,
    )
    r = client.post(
        "/book",
        data={
            **hidden,
            "client_id": "c-1",
            "therapist_id": "t-1",
            "modality": "face_to_face",
            "what": "boosters",
            "slot": "2030-01-07T10:00:00+00:00|Room 1",
            "booster_count": "2",
            "interval_months": "2",
        },
    )
    html = r.get_data(as_text=True)
    assert (
        r.status_code == 200
        and "Booster series booked" in html
        and "2 of 2 booster sessions booked" in html
    )
    assert "every 2 month(s)" in html and "Mon 04 Mar 2030, 10:00" in html
    assert services.last("POST", "/boosters")["json"] == {
        "client_id": "c-1",
        "therapist_id": "t-1",
        "modality": "face_to_face",
        "room": "Room 1",
        "first_starts_at": "2030-01-07T10:00:00+00:00",
        "count": 2,
        "interval_months": 2,
    }


def test_a_clash_brings_the_booking_form_back_with_the_reason_and_the_choice_kept(
    signed_in, services
):
    client = signed_in("admin")
    hidden = _form(_book_page(client, services), "/book")
    services.on(
        "POST",
        "/sessions",
        {
            "title": "Conflict",
            "status": 409,
            "detail": "the client already has a session at that time",
        },
        status=409,
    )
    r = client.post(
        "/book",
        data={
            **hidden,
            "client_id": "c-1",
            "therapist_id": "t-1",
            "modality": "face_to_face",
            "what": "session",
            "kind": "assessment",
            "slot": "2030-01-07T11:00:00+00:00|Room 1",
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "the client already has a session at that time" in html
    assert re.search(r'value="2030-01-07T11:00:00\+00:00\|Room 1" checked', html)
    assert '<option value="assessment" selected>' in html


def test_the_session_page_names_the_client_and_gives_the_video_link(signed_in, services):
    # issue 13, defect 8: "Session : Wed ..." with no name and no video link
    services.on("GET", "/sessions/s-1", SESSION)
    html = signed_in("therapist").get("/sessions/s-1").get_data(as_text=True)
    assert "<h1>Emma Hart: assessment, Mon 07 Jan 2030, 10:00</h1>" in html
    assert 'href="https://video.example.test/s-1"' in html


def test_a_refused_session_action_is_shown_on_the_session_page_with_the_input_kept(
    signed_in, services
):
    services.on("GET", "/sessions/s-1", SESSION)
    client = signed_in("therapist")
    page = client.get("/sessions/s-1").get_data(as_text=True)
    services.on(
        "POST",
        "/sessions/s-1/attend",
        {"title": "Conflict", "status": 409, "detail": "the session has not started yet"},
        status=409,
    )
    r = client.post("/sessions/s-1/attend", data=_form(page, "/sessions/s-1/attend"))
    assert r.status_code == 409 and "the session has not started yet" in r.get_data(as_text=True)
    services.on(
        "POST",
        "/sessions/s-1/reschedule",
        {
            "title": "Conflict",
            "status": 409,
            "detail": "the therapist already has a session at that time",
        },
        status=409,
    )
    r = client.post(
        "/sessions/s-1/reschedule",
        data={
            **_form(page, "/sessions/s-1/reschedule"),
            "starts_at": "2030-01-08T15:00",
            "reason": "school run",
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "already has a session" in html
    assert 'value="2030-01-08T15:00"' in html and 'value="school run"' in html
    r = client.post(
        "/sessions/s-1/reschedule",
        data={**_form(page, "/sessions/s-1/reschedule"), "starts_at": "soon"},
    )
    assert r.status_code == 422 and 'id="session-reschedule-starts_at-error"' in r.get_data(
        as_text=True
    )
    r = client.post(
        "/sessions/s-1/cancel",
        data={**_form(page, "/sessions/s-1/cancel"), "by": "client", "reason": " "},
    )
    assert r.status_code == 422 and 'id="session-cancel-reason-error"' in r.get_data(as_text=True)
    assert (
        services.last("POST", "/sessions/s-1/reschedule")["json"]["starts_at"]
        == "2030-01-08T15:00:00+00:00"
    )


def test_hours_and_leave_are_shown_and_saved_whole(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("PUT", "/therapists/t-2/availability", {**THERAPISTS[1]})
    client = signed_in("admin")
    page = client.get("/therapists/t-2/availability").get_data(as_text=True)
    assert 'name="start-0" type="time" step="600" value="09:00"' in page
    assert 'value="2030-01-08"' in page and 'value="Annual leave"' in page
    form = {
        **_form(page, "/therapists/t-2/availability"),
        **{f"start-{d}": "09:00" for d in range(4)},
        **{f"end-{d}": "17:00" for d in range(4)},
        "start-4": "",
        "end-4": "",
        "start-0": "08:30",
        "leave-start-0": "2030-01-08",
        "leave-end-0": "2030-01-09",
        "leave-reason-0": "Annual leave",
        "leave-start-1": "2030-02-01",
        "leave-end-1": "",
        "leave-reason-1": "Training day",
    }
    r = client.post("/therapists/t-2/availability", data=form)
    assert r.status_code == 302
    sent = services.last("PUT", "/therapists/t-2/availability")["json"]
    assert (
        sent["weekly_hours"][0] == {"weekday": 0, "start": "08:30", "end": "17:00"}
        and len(sent["weekly_hours"]) == 4
    )
    assert sent["exceptions"] == [
        {"start_date": "2030-01-08", "end_date": "2030-01-09", "reason": "Annual leave"},
        {"start_date": "2030-02-01", "end_date": "2030-02-01", "reason": "Training day"},
    ]


def test_bad_hours_or_leave_come_back_beside_the_field_and_a_therapist_edits_only_their_own(
    signed_in, services
):
    services.on("GET", "/therapists", THERAPISTS)
    client = signed_in("therapist")
    assert client.get("/therapists/t-2/availability").status_code == 403
    page = client.get("/therapists/t-1/availability").get_data(as_text=True)
    r = client.post(
        "/therapists/t-1/availability",
        data={
            **_form(page, "/therapists/t-1/availability"),
            "start-0": "17:00",
            "end-0": "09:00",
            "leave-start-0": "2030-03-10",
            "leave-end-0": "2030-03-01",
            "leave-reason-0": "Holiday",
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'id="availability-end-0-error"' in html and "must end after it starts" in html
    assert 'id="availability-leave-end-0-error"' in html and 'value="Holiday"' in html
    assert not [c for c in services.calls if c["method"] == "PUT"]
    services.on(
        "PUT",
        "/therapists/t-1/availability",
        {
            "title": "Unprocessable Entity",
            "status": 422,
            "errors": [{"field": "weekly_hours", "reason": "overlap"}],
        },
        status=422,
    )
    r = client.post(
        "/therapists/t-1/availability",
        data={**_form(page, "/therapists/t-1/availability"), "start-0": "09:00", "end-0": "17:00"},
    )
    assert r.status_code == 422 and "weekly_hours: overlap" in r.get_data(as_text=True)
