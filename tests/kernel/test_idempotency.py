"""Idempotency-Key on the kernel's writes, against the real local store, and JSON bodies
nested too deep refused before they are parsed."""

import threading

import pytest
from flask import g

from shared import idempotency
from shared.bodies import too_deep
from testkit.kernel import kernel_store

from .test_consistency import app  # noqa: F401  (the fixture)


def increments(settings, name):
    return sum(1 for e in kernel_store(settings).load(name) if e.type == "CounterIncremented")


def test_the_same_key_and_request_replays_the_first_answer_without_doing_it_again(
    app, settings, auth_header
):
    client, admin = app.test_client(), {**auth_header("admin"), "Idempotency-Key": "form-1"}
    first = client.post("/counters/c-1?x=1", headers=admin, json={"a": 1})
    again = client.post("/counters/c-1?x=1", headers=admin, json={"a": 1})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert again.headers["X-Rapport-Position"] == first.headers["X-Rapport-Position"]
    assert (
        again.headers["Idempotent-Replayed"] == "true"
        and "Idempotent-Replayed" not in first.headers
    )
    assert increments(settings, "c-1") == 1
    assert (
        client.post("/counters/c-1", headers=auth_header("admin"), json={"a": 1}).status_code == 201
    )
    assert increments(settings, "c-1") == 2, "without a key every request is carried out"


def test_the_same_key_with_another_request_is_refused(app, settings, auth_header):
    client, admin = app.test_client(), {**auth_header("admin"), "Idempotency-Key": "form-2"}
    assert client.post("/counters/c-2", headers=admin, json={"a": 1}).status_code == 201
    for other in (
        {"path": "/counters/c-2", "json": {"a": 2}},
        {"path": "/counters/c-3", "json": {"a": 1}},
    ):
        r = client.post(other["path"], headers=admin, json=other["json"])
        assert r.status_code == 422 and r.json["code"] == "key_reused"
        assert r.json["errors"][0]["field"] == "Idempotency-Key"
    assert increments(settings, "c-2") == 1 and increments(settings, "c-3") == 0


def test_keys_are_scoped_by_the_caller(app, settings, auth_header):
    client = app.test_client()
    one = {**auth_header("admin", sub="user-1"), "Idempotency-Key": "shared"}
    two = {**auth_header("admin", sub="user-2"), "Idempotency-Key": "shared"}
    assert client.post("/counters/c-4", headers=one).status_code == 201
    r = client.post("/counters/c-4", headers=two)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert increments(settings, "c-4") == 2


def test_concurrent_requests_with_one_key_do_the_work_once(app, settings, auth_header):
    admin = {**auth_header("admin"), "Idempotency-Key": "double-click"}
    answers = []

    def submit():
        answers.append(app.test_client().post("/counters/c-5", headers=admin, json={"n": 1}))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.headers["X-Rapport-Position"] for a in answers}) == 1
    assert sum(1 for a in answers if "Idempotent-Replayed" not in a.headers) == 1
    assert increments(settings, "c-5") == 1


def test_a_refused_request_gives_its_key_back(app, settings, auth_header):
    """A form shown again with its error keeps its key: corrected, it must go through."""
    client, admin = app.test_client(), {**auth_header("admin"), "Idempotency-Key": "form-6"}
    assert client.get("/counters/c-6", headers=admin).status_code == 200  # reads ignore keys
    assert client.post("/counters/c-6?refuse=1", headers=admin, json={"a": 1}).status_code == 422
    r = client.post("/counters/c-6", headers=admin, json={"a": 2})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert increments(settings, "c-6") == 1


def test_an_abandoned_claim_cannot_commit_after_a_retry_took_it_over(app, settings, auth_header):
    """A first request that looked dead (its claim older than ABANDONED) is taken over by a
    retry; when the first one then tries to commit, its events are undone."""
    from shared.web import context

    admin = {**auth_header("admin"), "Idempotency-Key": "slow"}
    with app.test_request_context("/counters/c-8", method="POST", headers=admin):
        assert app.preprocess_request() is None  # claimed
        db = context().db
        db[idempotency.COLLECTION].update_one(
            {"_id": g.rapport_claim.id}, {"$set": {"owner": "a retry"}}
        )
        with pytest.raises(idempotency.ClaimLost):
            app.view_functions["counters.Counter"](name="c-8")
    assert increments(settings, "c-8") == 0


def test_a_bad_key_is_400(app, auth_header):
    r = app.test_client().post(
        "/counters/c-9", headers={**auth_header("admin"), "Idempotency-Key": "x" * 256}
    )
    assert r.status_code == 400


def test_too_deep_counts_only_brackets_outside_strings():
    assert not too_deep(b'{"a": [[1, 2], {"b": "[[[[[[[["}]}', limit=3)
    assert too_deep(b"[" * 5, limit=4)
    assert not too_deep(b'"' + b"[" * 100 + b'"', limit=4)
    assert too_deep(b"[" * 100_000) and not too_deep(b'{"x": "' + b"[" * 900_000 + b'"}')


def test_deeply_nested_json_is_400_before_anything_parses_it(app, auth_header):
    client = app.test_client()
    deep = {"data": "[" * 100_000, "content_type": "application/json"}
    assert client.post("/counters/c-1", **deep).status_code == 401, "a signed-in route: 401 first"
    r = client.post(
        "/counters/c-1", headers={**auth_header("admin"), "Idempotency-Key": "k"}, **deep
    )
    assert r.status_code == 400 and "nested" in r.json["detail"]


def test_a_claim_whose_reply_was_lost_is_still_this_requests_own(
    app, settings, auth_header, monkeypatch
):
    """The driver retries a write once when a connection drops (retryable writes): if the
    first insert of the claim landed, the retry meets it as a duplicate key. That claim is
    this request's own (same owner), not another request's: the work goes on at once,
    rather than waiting for an answer nobody else will give and refusing with 409."""
    from pymongo.collection import Collection
    from pymongo.errors import DuplicateKeyError

    insert_one = Collection.insert_one

    def landed_then_retried(self, document, *args, **kwargs):
        result = insert_one(self, document, *args, **kwargs)
        if self.name == idempotency.COLLECTION:
            raise DuplicateKeyError("E11000 duplicate key error (the retried insert)")
        return result

    monkeypatch.setattr(Collection, "insert_one", landed_then_retried)
    monkeypatch.setattr(idempotency, "WAIT", 1.0)
    headers = {**auth_header("admin"), "Idempotency-Key": "lost-reply"}
    r = app.test_client().post("/counters/c-lost", headers=headers, json={"a": 1})
    assert r.status_code == 201, r.json
    assert increments(settings, "c-lost") == 1
