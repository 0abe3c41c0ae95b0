"""A command loads the client's stream once (issue 16, #1): the access check, the decision
and the answer all start from that one read. Before, `POST /clients/{id}/tasks` read the
stream three times (the access check, the handler, the answer) and
`POST /tasks/{id}/complete` four."""

from services.records.app import create_app
from testkit.kernel import listened_settings, stream_reads

from .support import EMMA, T1


def test_setting_and_completing_a_task_load_the_client_stream_once(
    settings, monkeypatch, auth_header
):
    ours, listener = listened_settings(settings, monkeypatch, "records-stream-loads")
    api = create_app(ours).test_client()
    t1 = auth_header("therapist", sub="t1-user", therapist_id=T1)
    client_id = api.post("/clients", json=EMMA, headers=t1).get_json()["client_id"]

    listener.commands.clear()
    r = api.post(f"/clients/{client_id}/tasks", json={"description": "Talk to Mark"}, headers=t1)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "open"
    # the load, and nothing else: the append's version is checked by the unique index (issue 14)
    assert stream_reads(listener, client_id) == (1, 1)

    listener.commands.clear()
    r = api.post(
        f"/tasks/{r.get_json()['task_id']}/complete", json={"reflection": "went ok"}, headers=t1
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "completed"
    assert stream_reads(listener, client_id) == (1, 1)
