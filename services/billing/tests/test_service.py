"""Billing against the real broker and store: charges follow the diary's events, invoices,
payments, balances, reports, and a replay giving the same balances to the penny."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from services.billing.projections import Ledger
from shared.consumer import projection_store, rebuild
from shared.projections import snapshot
from shared.run import make_relay
from shared.web import ServiceContext
from testkit.plugin import eventually, service_workers

from .conftest import Diary, charges_of, fees_body, register_client, wait_for_client

FIRST = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday, 10:00 GMT
OPENAPI = Path(__file__).resolve().parents[1] / "openapi.json"


def setup_practice(client, h, settings, client_id="c1", **fees):
    r = client.put("/fees", headers=h, json=fees_body(**fees))
    assert r.status_code == 200, r.json
    register_client(settings, client_id)
    wait_for_client(client, h, client_id)


def summary(charges) -> list[tuple]:
    return [(c["session_id"], c["reason"], c["payer"], c["gross"]["amount"]) for c in charges]


def test_a_course_with_one_late_cancellation_and_one_dna(client, auth_header, settings, running):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    Diary(settings, "c1").course(FIRST, late=(5,), dna=(9,))
    charges = charges_of(client, h, "c1", 16)
    expected = [(f"c1-s{n}", "attended", "client", 9000) for n in range(1, 17)]
    expected[4] = ("c1-s5", "late_cancellation", "client", 9000)
    expected[8] = ("c1-s9", "did_not_attend", "client", 4500)
    assert summary(charges) == expected
    balance = client.get("/clients/c1/balance", headers=h).json
    assert balance["client"]["owed"] == {"amount": 15 * 9000 + 4500, "currency": "GBP"}


def test_an_in_time_or_therapist_cancellation_charges_nothing(
    client, auth_header, settings, running
):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    diary = Diary(settings, "c1")
    diary.book("a", FIRST)
    diary.cancel("a", FIRST, FIRST.replace(day=1))  # 24 h before
    diary.book("b", FIRST.replace(day=9))
    diary.cancel("b", FIRST.replace(day=9), FIRST.replace(day=9, hour=8), by="therapist")
    diary.book("c", FIRST.replace(day=16))
    diary.attend("c", FIRST.replace(day=16))
    assert summary(charges_of(client, h, "c1", 1)) == [("c", "attended", "client", 9000)]


def test_a_price_change_mid_course(client, auth_header, settings, running, clock):
    h = auth_header("clinical_lead")
    setup_practice(client, h, settings)
    r = client.put("/fees", headers=h, json=fees_body("2026-04-01", treatment=9900))
    assert r.status_code == 200, r.json
    assert r.json["current"]["effective_from"] == "2026-01-01"
    late = client.put("/fees", headers=h, json=fees_body("2026-02-01", treatment=1))
    assert late.status_code == 422 and late.json["errors"][0]["field"] == "effective_from"
    Diary(settings, "c1").course(FIRST, count=8)
    charges = charges_of(client, h, "c1", 8)
    by_date = {c["session_date"]: (c["gross"]["amount"], c["price_list"]) for c in charges}
    assert by_date["2026-03-30"] == (9000, "2026-01-01")
    assert by_date["2026-04-06"] == (9900, "2026-04-01")
    assert sum(c["gross"]["amount"] for c in charges) == 5 * 9000 + 3 * 9900  # 2-30 March


def test_an_insurer_funds_12_of_16(client, auth_header, settings, running):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    funding = {
        "payer": "insurer",
        "payer_name": "Acme Health",
        "payer_reference": "POL-77",
        "payer_email": "claims@acme.test",
        "funded_sessions": 12,
    }
    r = client.put("/clients/c1/funding", headers=h, json=funding)
    assert r.status_code == 200 and r.json["funded_used"] == 0, r.json
    Diary(settings, "c1").course(FIRST)
    charges = charges_of(client, h, "c1", 16)
    # which 12 depends on the order the diary's events arrive in (partitions): the count not
    payers = [c["payer"] for c in charges]
    assert (payers.count("funder"), payers.count("client")) == (12, 4)
    r = client.post("/invoices", headers=h, json={"client_id": "c1", "payer": "funder"})
    assert r.status_code == 201, r.json
    assert r.json["addressed_to"]["name"] == "Acme Health"
    assert r.json["total"] == {"amount": 12 * 9000, "currency": "GBP"}
    balance = client.get("/clients/c1/balance", headers=h).json
    assert balance["funder"]["owed"]["amount"] == 12 * 9000
    assert balance["client"]["owed"]["amount"] == 4 * 9000
    therapist = auth_header("therapist", therapist_id="t1")
    seen = client.get("/clients/c1/charges", headers=therapist).json
    assert "charges" not in seen and [s["funded"] for s in seen["sessions"]].count(True) == 12
    assert "9000" not in json.dumps(seen)
    assert client.get("/clients/c1/balance", headers=therapist).status_code == 403


def test_invoices_payments_credit_and_a_replay_to_the_penny(
    client, auth_header, settings, running, clock
):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    Diary(settings, "c1").course(FIRST, count=4, dna=(2,))
    charges = charges_of(client, h, "c1", 4)
    ids = [c["charge_id"] for c in charges]
    clock.now = datetime(2026, 3, 31, 9, tzinfo=UTC)
    first = client.post("/invoices", headers=h, json={"client_id": "c1", "charge_ids": ids[:3]})
    assert first.status_code == 201 and first.json["number"] == "INV-000001", first.json
    again = client.post("/invoices", headers=h, json={"client_id": "c1", "charge_ids": ids[:1]})
    assert again.status_code == 409, again.json
    ghost = client.post("/invoices", headers=h, json={"client_id": "c1", "charge_ids": ["nope"]})
    assert ghost.status_code == 422 and ghost.json["errors"][0]["field"] == "charge_ids.0"
    second = client.post("/invoices", headers=h, json={"client_id": "c1"})
    assert second.json["number"] == "INV-000002"  # no gap left by the refused ones
    invoice_id = first.json["invoice_id"]
    pay = {"client_id": "c1", "method": "card", "amount": 10000, "received_on": "2026-04-02"}
    r = client.post("/payments", headers=h, json={**pay, "invoice_id": invoice_id})
    assert r.status_code == 201 and r.json["to_credit"]["amount"] == 0, r.json
    r = client.post("/payments", headers=h, json={**pay, "amount": 20000})
    # 12,500 settles the first invoice (22,500), 7,500 goes to the second (9,000)
    assert [a["amount"]["amount"] for a in r.json["allocations"]] == [12500, 7500], r.json
    aged = eventually(  # the ledger projection catches up (at most 2 s with the position)
        lambda: (lambda a: a if a["buckets"]["31-60"] == 1500 else None)(
            client.get("/reports/aged-debt?as_of=2026-05-15", headers=h).json
        ),
        message="aged debt after the payments",
    )
    assert aged["invoices"][0]["client_name"] == "Emma Stone"
    r = client.post(f"/invoices/{invoice_id}/credit-note", headers=h, json={"reason": "goodwill"})
    assert r.status_code == 201 and r.json["number"] == "CN-000001", r.json
    # paid already on the credited lines: settles the second invoice, the rest held as credit
    assert r.json["to_credit"]["amount"] == 22500 - 1500
    r = client.post("/payments", headers=h, json={**pay, "kind": "refund", "amount": 500})
    assert r.status_code == 201, r.json
    waive = client.post(f"/charges/{ids[0]}/waive", headers=h, json={"reason": "x"})
    assert waive.status_code == 409  # invoiced: a credit note corrects it
    as_of = client.get("/clients/c1/balance?as_of=2026-01-01", headers=h).json
    assert as_of["client"]["owed"]["amount"] == 0
    replay_gives_the_same_balances(client, h, settings, payments=3)
    lines = client.get("/clients/c1/statement", headers=h).json["lines"]
    assert lines[-1]["owed"] == client.get("/clients/c1/balance", headers=h).json["client"]["owed"]
    assert [x["what"] for x in lines][:2] == ["Therapy session", "Non-attendance: therapy session"]
    aged = client.get("/reports/aged-debt?as_of=2026-05-15", headers=h).json
    assert aged["total"]["amount"] == 0 and aged["invoices"] == []  # the credit note settled it
    income = client.get("/reports/income", headers=h).json
    assert income["months"][0]["month"] == "2026-03"


def replay_gives_the_same_balances(client, h, settings, payments: int) -> None:
    """The live balance equals the fold of the account's events, and replaying the billing
    topic into a fresh generation of the ledger gives the same accounts to the penny."""
    eventually(
        lambda: len(client.get("/clients/c1/payments", headers=h).json) == payments,
        message="the ledger has every event",
    )
    live = client.get("/clients/c1/balance", headers=h).json
    now = client.get(
        "/clients/c1/balance", headers=h, query_string={"as_of": datetime.now(UTC).isoformat()}
    ).json
    assert {k: live[k] for k in ("client", "funder")} == {k: now[k] for k in ("client", "funder")}
    ledger = projection_store(settings, Ledger())
    before = snapshot(ledger.reader("accounts"))
    assert rebuild(settings, Ledger()) == 2
    assert snapshot(projection_store(settings, Ledger()).reader("accounts")) == before
    assert before and client.get("/clients/c1/balance", headers=h).json == live


def test_bad_input_is_refused_and_nothing_is_half_written(client, auth_header, settings, running):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    store = ServiceContext("billing", settings).store
    before = store.events.count_documents({})
    pay = {"client_id": "c1", "method": "card", "amount": 100, "received_on": "2026-04-02"}
    cases = [
        ("/payments", {**pay, "amount": -100}, "amount"),
        ("/payments", {**pay, "amount": 10**12}, "amount"),
        ("/payments", {**pay, "amount": 10.5}, "amount"),
        ("/payments", {**pay, "method": "cheque"}, "method"),
        ("/payments", {**pay, "payer": "funder"}, "payer"),
        ("/payments", {**pay, "kind": "refund"}, "amount"),
        ("/invoices", {"client_id": "c1", "from": "2026-04-02", "to": "2026-04-01"}, "to"),
    ]
    for path, body, field in cases:
        r = client.post(path, headers=h, json=body)
        assert r.status_code == 422, (body, r.json)
        assert field in {e["field"] for e in r.json["errors"]}, (body, r.json)
    assert (
        client.post("/payments", headers=h, json={**pay, "client_id": "ghost"}).status_code == 404
    )
    assert client.post("/invoices", headers=h, json={"client_id": "c1"}).status_code == 409
    assert client.post("/charges/ghost/waive", headers=h, json={"reason": "x"}).status_code == 404
    assert client.get("/invoices/ghost", headers=h).status_code == 404
    assert store.events.count_documents({}) == before
    assert (
        client.get("/fees", headers=auth_header("therapist", therapist_id="t1")).status_code == 403
    )


def test_the_committed_openapi_document_is_the_live_one(client):
    assert json.loads(OPENAPI.read_text()) == client.get("/openapi.json").json, (
        "regenerate: flask --app services.billing.wsgi openapi write"
    )


def test_invoices_racing_for_numbers_get_every_number_once(client, auth_header, settings, running):
    """Six invoices issued at the same moment take INV-000001..6: no number twice, no gap."""
    from concurrent.futures import ThreadPoolExecutor

    h = auth_header("admin")
    setup_practice(client, h, settings)
    clients = [f"r{i}" for i in range(6)]
    for client_id in clients:
        register_client(settings, client_id)
        Diary(settings, client_id).course(FIRST, count=1)
    for client_id in clients:
        charges_of(client, h, client_id, 1)

    def issue(client_id):
        return client.application.test_client().post(
            "/invoices", headers=h, json={"client_id": client_id}
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(issue, clients))
    assert [a.status_code for a in answers] == [201] * 6, [a.json for a in answers]
    assert sorted(a.json["number"] for a in answers) == [f"INV-{n:06d}" for n in range(1, 7)]


def test_a_session_without_a_price_is_shown_and_charged_once_the_price_is_added(
    client, auth_header, settings, running
):
    h = auth_header("admin")
    lacking = fees_body()
    lacking["prices"] = [p for p in lacking["prices"] if p["kind"] != "booster"]
    assert client.put("/fees", headers=h, json=lacking).status_code == 200
    register_client(settings, "c1")
    wait_for_client(client, h, "c1")
    diary = Diary(settings, "c1")
    diary.book("b1", FIRST, kind="booster")
    diary.attend("b1", FIRST, kind="booster")
    unpriced = eventually(
        lambda: client.get("/clients/c1/charges", headers=h).json["unpriced"],
        message="the booster shown as not charged",
    )
    assert unpriced[0]["session_id"] == "b1" and "no fee" in unpriced[0]["reason"]
    changed = client.put("/fees", headers=h, json={**lacking, "notice_hours": 48})
    assert changed.status_code == 422  # a list in force may gain prices, not change its policy
    assert client.put("/fees", headers=h, json=fees_body()).status_code == 200
    charges = charges_of(client, h, "c1", 1)
    assert summary(charges) == [("b1", "attended", "client", 8000)]
    assert client.get("/clients/c1/charges", headers=h).json["unpriced"] == []


def test_two_charge_workers_at_once_charge_each_session_once(
    client, auth_header, settings, workers
):
    """As with two consumer pods: both workers see the same pending sessions; the account
    stream's version makes the second decision see the first charge (and the funded count)."""
    from services.billing.workers import ChargeWorker

    workers.start(
        make_relay(settings, "scheduling").run,
        make_relay(settings, "records").run,
        *service_workers(settings, "billing", loops=False),
        ChargeWorker(settings).run,
        ChargeWorker(settings).run,
    )
    h = auth_header("admin")
    setup_practice(client, h, settings)
    funding = {"payer": "insurer", "payer_name": "Acme Health", "funded_sessions": 12}
    assert client.put("/clients/c1/funding", headers=h, json=funding).status_code == 200
    Diary(settings, "c1").course(FIRST)
    payers = [c["payer"] for c in charges_of(client, h, "c1", 16)]
    assert (payers.count("funder"), payers.count("client")) == (12, 4)
    store = ServiceContext("billing", settings).store
    assert store.events.count_documents({"type": "ChargeRaised"}) == 16


def test_a_payment_sent_twice_with_one_key_is_recorded_once(client, auth_header, settings, running):
    h = auth_header("admin")
    setup_practice(client, h, settings)
    pay = {"client_id": "c1", "method": "card", "amount": 5000, "received_on": "2026-02-16"}
    keyed = {**h, "Idempotency-Key": "form-123"}
    first = client.post("/payments", headers=keyed, json=pay)
    again = client.post("/payments", headers=keyed, json=pay)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["payment_id"] == first.json["payment_id"]
    store = ServiceContext("billing", settings).store
    assert store.events.count_documents({"type": "PaymentRecorded"}) == 1
    # read-your-writes: the balance waits for the position the payment produced
    seen = {**h, "X-Rapport-Min-Position": first.headers["X-Rapport-Position"]}
    balance = client.get("/clients/c1/balance", headers=seen).json
    assert balance["client"]["credit"]["amount"] == 5000  # nothing owed yet: held as credit


def test_the_charge_worker_looks_for_sessions_a_new_price_may_charge_now_and_then(
    settings, monkeypatch
):
    """Woken by every batch of every billing projection, the worker looks for sessions left
    unpriced (the price list's version, then those sessions) at most every UNPRICED_EVERY
    seconds, not with every step; once the period has passed it looks again."""
    import services.billing.workers as charges
    from testkit.kernel import listened_settings

    heard, listener = listened_settings(settings, monkeypatch, "charge-worker")
    worker = charges.ChargeWorker(heard)
    worker.store.ensure_indexes()

    def fees_reads() -> int:
        return sum(1 for c in listener.commands if c.get("find") == "events")

    for _ in range(5):
        assert worker.step() == 0
    assert fees_reads() == 1
    monkeypatch.setattr(charges, "UNPRICED_EVERY", 0.0)
    worker.step()
    assert fees_reads() == 2


def test_the_charge_worker_looks_again_only_while_a_look_comes_back_full(settings, monkeypatch):
    """A step that charged sessions looked once more for nothing, and its loop then stepped
    again at once: half of its looks in the flows bench (issue 14). A look that finds fewer
    than LOOK found all there were; a full one is followed by another. (Sessions pending but
    not ended, so nothing is charged and only the looks are counted.)"""
    import services.billing.workers as charges
    from testkit.kernel import listened_settings

    heard, listener = listened_settings(settings, monkeypatch, "charge-worker-looks")
    monkeypatch.setattr(charges, "LOOK", 2)
    worker = charges.ChargeWorker(heard)
    worker.store.ensure_indexes()
    worker._unpriced_looked = float("inf")  # not the unpriced look: only the pending ones
    sessions = worker.diary.reader("sessions")

    def pending(*ids: str) -> None:
        sessions.insert_many(
            [{"_id": i, "pending": True, "rev": 0, "status": "booked", "starts_at": i} for i in ids]
        )

    def looks() -> int:
        return sum(1 for c in listener.commands if (c.get("filter") or {}).get("pending") is True)

    pending("s1")
    assert worker.step() == 1 and looks() == 1  # one look, short: no look for nothing after
    pending("s2", "s3", "s4")
    assert worker.step() == 3 and looks() == 1 + 2  # full (2), then short (1)
    assert sessions.count_documents({"pending": True}) == 0


def _ended(sid: str, client_id: str, day: int, kind: str = "treatment") -> dict:
    """A session of billing's diary as the worker finds it: attended, its charge pending."""
    return {
        "_id": sid,
        "pending": True,
        "rev": 1,
        "status": "attended",
        "client_id": client_id,
        "therapist_id": "t1",
        "kind": kind,
        "modality": "video",
        "starts_at": FIRST.replace(day=day),
        "last_event_id": f"ev-{sid}",
    }


def _charged(store) -> dict[str, tuple]:
    """{session id: (account stream, correlation id, causation id)} of the charges raised."""
    return {
        e.data["session_id"]: (e.stream_id, e.correlation_id, e.causation_id)
        for e in store.read_all()
        if e.type == "ChargeRaised"
    }


def test_the_charge_worker_charges_a_look_together_each_charge_with_its_own_cause(
    client, auth_header, settings, monkeypatch
):
    """The ended sessions of one look: the price list read once, every account in one query
    and the charges appended in one transaction, each with its own session's correlation and
    cause, a client's two in their order; a session the price list has no fee for is
    refused alone, and the others are charged. The look's flags are cleared together, in
    one transaction more."""
    import services.billing.workers as charges
    from testkit.kernel import listened_settings, stream_reads

    lacking = fees_body()
    lacking["prices"] = [p for p in lacking["prices"] if p["kind"] != "booster"]
    assert client.put("/fees", headers=auth_header("admin"), json=lacking).status_code == 200
    heard, listener = listened_settings(settings, monkeypatch, "charge-worker-together")
    worker = charges.ChargeWorker(heard)
    worker.store.ensure_indexes()
    worker._unpriced_looked = float("inf")  # only the pending sessions are looked for
    sessions = worker.diary.reader("sessions")
    sessions.insert_many(
        [
            _ended("a1", "a", 2),
            _ended("b1", "b", 3),
            _ended("c1", "c", 4),
            _ended("d1", "d", 5, kind="booster"),
            _ended("a2", "a", 9),
        ]
    )
    assert worker.step() == 5
    assert _charged(worker.store) == {
        sid: (f"account-{sid[0]}", f"session:{sid}", f"ev-{sid}")
        for sid in ("a1", "b1", "c1", "a2")
    }
    assert [e.data["session_id"] for e in worker.store.load("account-a")] == ["a1", "a2"]
    # the charges in one transaction, then the look's flags cleared together in one more
    assert listener.names.count("commitTransaction") == 2
    clear = listener.names.index("commitTransaction", listener.names.index("commitTransaction") + 1)
    cleared = listener.commands[clear - 1]
    assert str(cleared.get("update")).startswith("sessions"), cleared  # (its generation)
    assert len(cleared["updates"]) == 5 and cleared["autocommit"] is False
    together = [
        c for c in listener.commands if "$in" in ((c.get("filter") or {}).get("stream_id") or {})
    ]
    assert [sorted(c["filter"]["stream_id"]["$in"]) for c in together] == [
        ["account-a", "account-b", "account-c", "account-d"]
    ]
    assert stream_reads(listener, "fees") == (1, 1)  # one load of the price list
    refused = sessions.find_one({"_id": "d1"})
    assert "no fee" in refused["unpriced"]["reason"] and refused["unpriced"]["fees_version"] == 1
    assert sessions.count_documents({"pending": True}) == 0


def test_a_look_whose_account_moved_meanwhile_is_charged_one_by_one_once(
    client, auth_header, settings, monkeypatch
):
    """Another worker charges one of the clients between the look's read of the accounts
    and its transaction: the transaction appends nothing (the account's version moved), and
    each session is then charged on its own, once."""
    import services.billing.workers as charges

    assert client.put("/fees", headers=auth_header("admin"), json=fees_body()).status_code == 200
    worker = charges.ChargeWorker(settings)
    worker.store.ensure_indexes()
    worker._unpriced_looked = float("inf")
    sessions = worker.diary.reader("sessions")
    sessions.insert_many([_ended("a1", "a", 2), _ended("b1", "b", 3), _ended("c1", "c", 4)])
    read = worker.store.load_many

    def read_then_another_worker_charges_b(stream_ids):
        found = read(stream_ids)
        other = charges.ChargeWorker(settings)
        other.billing.charge_session(
            charges.outcome_of(_ended("b0", "b", 1)), other._meta({"_id": "b0"})
        )
        return found

    monkeypatch.setattr(worker.store, "load_many", read_then_another_worker_charges_b)
    assert worker.step() == 3
    assert sorted(_charged(worker.store)) == ["a1", "b0", "b1", "c1"]
    events = [e for e in worker.store.read_all() if e.type == "ChargeRaised"]
    assert len(events) == 4  # none twice
    assert [e.stream_version for e in worker.store.load("account-b")] == [1, 2]
    assert sessions.count_documents({"pending": True}) == 0
