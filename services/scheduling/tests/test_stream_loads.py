"""A command loads its stream once (issue 16, #1): the access check, the decision and the
answer start from that one read. Before, setting a therapist's hours read the therapist's
stream twice (the handler, then the answer) and the discharge worker read each session it
cancelled twice (to see whether it was still booked, then to cancel it)."""

from services.scheduling.app import create_app
from services.scheduling.projections import Discharges
from services.scheduling.workers import make_canceller
from testkit.kernel import listened_settings, stream_reads

from .conftest import (
    WORKING_WEEK,
    apply_records_directly,
    at,
    discharge_client,
    monday,
    register_client,
)


def test_setting_hours_loads_the_therapist_stream_once(settings, monkeypatch, auth_header, clock):
    ours, listener = listened_settings(settings, monkeypatch, "scheduling-stream-loads")
    api = create_app(ours, clock=clock).test_client()
    therapist = {"therapist_id": "t1", "name": "Ann", "email": "t1@rapport.test"}
    r = api.post(
        "/therapists",
        headers=auth_header("admin"),
        json={**therapist, "modalities": ["video"], "rooms": []},
    )
    assert r.status_code == 201, r.get_json()

    listener.commands.clear()
    r = api.put(
        "/therapists/t1/availability",
        headers=auth_header("therapist", therapist_id="t1"),
        json={"weekly_hours": WORKING_WEEK, "exceptions": []},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["name"] == "Ann" and r.get_json()["weekly_hours"] == WORKING_WEEK
    # the load only: the append's version is checked by the unique index (issue 14)
    assert stream_reads(listener, "therapist-t1") == (1, 1)


def test_the_discharge_worker_loads_each_session_once(
    settings, monkeypatch, auth_header, clock, therapist
):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    ours, listener = listened_settings(settings, monkeypatch, "scheduling-discharge-loads")
    api = create_app(ours, clock=clock).test_client()
    r = api.post(
        "/sessions",
        headers=auth_header("admin"),
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": at(monday(), 10).isoformat(),
        },
    )
    assert r.status_code == 201, r.get_json()
    session_id = r.get_json()["session_id"]
    discharge_client(settings, "c1", "t1")
    apply_records_directly(settings, Discharges())

    listener.commands.clear()
    assert make_canceller(ours).step() == 1
    assert stream_reads(listener, f"session-{session_id}") == (1, 1)
    cancelled = api.get(f"/sessions/{session_id}", headers=auth_header("admin")).get_json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "practice"
