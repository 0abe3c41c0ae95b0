"""Issue 15: what an attacker or a careless user sent, each refused with a 422 naming the
field and nothing written — dates outside 2000-2099 (year 1 and 9999 with an offset gave
500s or broke the record for good), nonsense stored silently (control and direction
characters, impossible phone and NHS numbers, unsafe ids), a task completed before it was
set or in the future. And a date already stored at the edge of the calendar breaks no page."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.events import Actor, NewEvent
from shared.eventstore import Metadata

from .support import EMMA, known_session
from .test_api import api, app, emma, event_count, fields_of, lead, problem  # noqa: F401  (fixtures)

EDGES = (
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1970-01-01T00:00:00Z",
    "2100-01-01T00:00:00Z",
)


@pytest.mark.parametrize("value", EDGES)
def test_times_outside_the_range_are_refused_on_every_records_route(app, api, lead, emma, value):
    before = event_count(app)
    for path, name in (
        (f"/clients/{emma}", "as_of"),
        (f"/clients/{emma}/history", "as_of"),
        ("/audit", "since"),
        ("/audit", "until"),
    ):
        body = problem(api.get(path, query_string={name: value}, headers=lead), 422)
        assert "between 2000-01-01 and 2099-12-31" in fields_of(body)[f"query.{name}"], (path, body)
    body = problem(
        api.post(
            f"/clients/{emma}/tasks", headers=lead, json={"description": "a walk", "due_at": value}
        ),
        422,
    )
    assert "due_at" in fields_of(body)
    task = api.post(
        f"/clients/{emma}/tasks", headers=lead, json={"description": "a walk"}
    ).get_json()
    body = problem(
        api.post(f"/tasks/{task['task_id']}/complete", headers=lead, json={"completed_at": value}),
        422,
    )
    assert "completed_at" in fields_of(body)
    assert event_count(app) == before + 1  # the task only


def test_a_task_is_not_completed_before_it_was_set_nor_in_the_future(app, api, lead, emma):
    task = api.post(
        f"/clients/{emma}/tasks", headers=lead, json={"description": "a walk"}
    ).get_json()
    before = event_count(app)
    for when in (
        "2001-01-01T10:00:00Z",
        "2099-06-01T10:00:00Z",
        (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    ):
        body = problem(
            api.post(
                f"/tasks/{task['task_id']}/complete", headers=lead, json={"completed_at": when}
            ),
            422,
        )
        assert "completed_at" in fields_of(body), when
    assert event_count(app) == before
    done = api.post(
        f"/tasks/{task['task_id']}/complete", headers=lead, json={"reflection": "went well"}
    )
    assert done.status_code == 200, done.get_json()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"given_name": "Em\x00ma"}, "given_name"),
        ({"family_name": "Clarke\u202egpj.exe"}, "family_name"),
        ({"given_name": "Emma\u200b"}, "given_name"),
        ({"given_name": "Emma\nClarke"}, "given_name"),
        ({"referral_source": "GP\x1b[31m"}, "referral_source"),
        ({"gp": {"name": "Dr\u202ePatel", "practice": "Vinters Park"}}, "gp.name"),
        ({"phone": "-------"}, "phone"),
        ({"phone": "((((((("}, "phone"),
        ({"phone": "0770"}, "phone"),
        ({"nhs_number": "0000000000"}, "nhs_number"),
        ({"nhs_number": "1111111111"}, "nhs_number"),
        ({"nhs_number": "٩٤٣٤٧٦٥٩١٩"}, "nhs_number"),  # 9434765919 in Arabic-Indic digits
        ({"nhs_number": "９４３４７６５９１９"}, "nhs_number"),  # full-width
        ({"therapist_id": "../x"}, "therapist_id"),
        ({"therapist_id": "a/b"}, "therapist_id"),
        ({"therapist_id": " "}, "therapist_id"),
    ],
)
def test_nonsense_in_a_registration_is_refused(app, api, lead, change, field):
    body = problem(api.post("/clients", json={**EMMA, **change}, headers=lead), 422)
    assert field in fields_of(body), body
    assert event_count(app) == 0, "nothing written"


def test_control_characters_are_refused_in_notes_and_reasons_but_line_breaks_kept(
    app, api, lead, emma, settings
):
    note = {
        "session_id": known_session(settings, emma),
        "text": "Talked about Mark.\nAgreed a plan.\tNext week: chores.",
    }
    assert api.post(f"/clients/{emma}/notes", json=note, headers=lead).status_code == 201
    before = event_count(app)
    for path, body, field in (
        (f"/clients/{emma}/notes", {**note, "text": "ok\x00then"}, "text"),
        (f"/clients/{emma}/phase", {"to_phase": "initial", "reason": "start\u202e"}, "reason"),
        (
            f"/clients/{emma}/erasure-requests",
            {"requested_by": "Joan\u2066", "request": "delete"},
            "requested_by",
        ),
    ):
        assert field in fields_of(problem(api.post(path, json=body, headers=lead), 422)), path
    assert "reason" in fields_of(
        problem(
            api.patch(
                f"/clients/{emma}",
                headers=lead,
                json={"reason": "typo\x07", "phone": "07700 900999"},
            ),
            422,
        )
    )
    assert event_count(app) == before


def test_a_stored_task_due_in_year_9999_breaks_no_page(app, api, lead, emma):
    """An event written before the range existed (the probe's task) must still be shown."""
    with app.app_context():
        from shared.web import context

        store = context().store
        version = len(store.load(emma))  # a client's stream is named by the client id
        assert version >= 1
        edge = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))
        store.append(
            emma,
            version,
            [
                NewEvent(
                    "TaskAssigned",
                    {
                        "client_id": emma,
                        "task_id": "old-task",
                        "description": "from before",
                        "due_at": edge,
                    },
                )
            ],
            Metadata(actor=Actor("probe", "therapist"), correlation_id="c-probe"),
        )
    for path in (f"/clients/{emma}", f"/clients/{emma}/history", f"/clients/{emma}/export"):
        response = api.get(path, headers=lead)
        assert response.status_code == 200, (path, response.get_json())
    assert "9999-12-31T23:59:59-01:00" in response.get_data(as_text=True)
    assert api.post("/tasks/old-task/complete", headers=lead, json={}).status_code == 200
