"""The measures reactor's step against the real local broker and store: every pending plan is
requested exactly once and its flag cleared, the same work again adds nothing, and a plan whose
work fails keeps its flag until a step can do it."""

from datetime import timedelta

import pytest

from services.measures.domain import request_id_for, request_stream
from services.measures.projections import QuestionnairePlans
from services.measures.workers import Reactor
from shared.consumer import projection_store
from testkit.plugin import eventually, service_workers

from .support import Upstream, app, booked, now, register_client  # noqa: F401

SESSIONS = [f"rs{i}" for i in range(12)]


@pytest.fixture
def planned(settings, app, workers):
    """Twelve sessions booked, their plans pending in measures (no reactor running)."""
    workers.start(*service_workers(settings, "measures", loops=False))
    records, scheduling = Upstream(settings, "records"), Upstream(settings, "scheduling")
    register_client(records, "rhea", "t-1", "Rhea")
    start = now() + timedelta(days=3)
    for i, session in enumerate(SESSIONS):
        scheduling.publish(
            f"session-{session}",
            booked(session, "rhea", "t-1", start + timedelta(days=7 * i), "course-r", i + 1),
        )
    plans = projection_store(settings, QuestionnairePlans()).reader("plans")
    eventually(lambda: plans.count_documents({"_id": {"$in": SESSIONS}, "pending": True}) == 12)
    return plans


def requested(store, session):
    return [e.type for e in store.load(request_stream(request_id_for(session)))]


def test_one_step_requests_every_pending_plan_once_and_clears_its_flag(settings, app, planned):
    store = app.extensions["rapport"].store
    reactor = Reactor(settings)
    assert reactor.step() == 12
    assert all(requested(store, s) == ["QuestionnaireRequested"] for s in SESSIONS)
    assert planned.count_documents({"pending": True}) == 0
    # the same work again (a crash before the flags were cleared): nothing more is appended
    planned.update_many({"_id": {"$in": SESSIONS}}, {"$set": {"pending": True}})
    assert reactor.step() == 12
    assert all(requested(store, s) == ["QuestionnaireRequested"] for s in SESSIONS)
    assert planned.count_documents({"pending": True}) == 0
    assert reactor.step() == 0


def test_a_plan_that_fails_keeps_its_flag_until_a_step_can_do_it(settings, app, planned):
    store = app.extensions["rapport"].store
    broken = SESSIONS[5]
    client = planned.find_one({"_id": broken})["client_id"]
    planned.update_one({"_id": broken}, {"$unset": {"client_id": ""}})  # its work raises
    reactor = Reactor(settings)
    with pytest.raises(KeyError):
        reactor.step()
    assert requested(store, broken) == []
    assert planned.find_one({"_id": broken})["pending"] is True
    planned.update_one({"_id": broken}, {"$set": {"client_id": client}})
    while reactor.step():
        pass
    assert all(requested(store, s) == ["QuestionnaireRequested"] for s in SESSIONS)
    assert planned.count_documents({"pending": True}) == 0


def test_a_step_reads_each_clients_instruments_once(settings, app, planned, monkeypatch):
    """A course's sixteen bookings are sixteen plans of one client: their requests carry the
    client's instrument set, read once for the step, not once a plan."""
    reactor = Reactor(settings)
    read, real = [], reactor.application.instruments_for_all
    monkeypatch.setattr(
        reactor.application,
        "instruments_for_all",
        lambda ids: read.append(sorted(ids)) or real(ids),
    )
    assert reactor.step() == 12
    assert read == [["rhea"]]
    store = app.extensions["rapport"].store
    [first] = store.load(request_stream(request_id_for(SESSIONS[0])))
    assert first.data["instruments"] == list(reactor.application.instruments_for("rhea"))


def test_a_step_requests_its_plans_in_one_transaction(settings, app, planned, monkeypatch):
    """The step's twelve requests go in one append of twelve streams: one by one, each was a
    transaction holding measures' append lock, and under load the reactor fell behind."""
    reactor = Reactor(settings)
    appends, real = [], reactor.store.append_streams
    monkeypatch.setattr(
        reactor.store,
        "append_streams",
        lambda streams, meta, **kw: appends.append(len(streams)) or real(streams, meta, **kw),
    )
    assert reactor.step() == 12
    assert appends == [12]
    store = app.extensions["rapport"].store
    versions = [
        e.stream_version for s in SESSIONS for e in store.load(request_stream(request_id_for(s)))
    ]
    assert versions == [1] * 12


def test_a_stream_moved_meanwhile_sends_the_step_one_by_one(settings, app, planned, monkeypatch):
    """A request appended by someone else between the step's read and its append (another
    reactor): the step's transaction writes nothing, then each plan goes on its own and
    the one already requested adds nothing."""
    store = app.extensions["rapport"].store
    reactor = Reactor(settings)
    other = Reactor(settings)
    load_many, raced = reactor.store.load_many, []

    def read_then_raced(streams):
        histories = load_many(streams)
        if not raced and any(s.startswith("questionnaire-request-") for s in streams):
            raced.append(SESSIONS[3])
            plan = planned.find_one({"_id": SESSIONS[3]})
            chosen = other.application.instruments_for_all([plan["client_id"]])
            other.application.act(other._plan(plan, chosen))
        return histories

    monkeypatch.setattr(reactor.store, "load_many", read_then_raced)
    assert reactor.step() == 12
    assert raced == [SESSIONS[3]]
    assert all(requested(store, s) == ["QuestionnaireRequested"] for s in SESSIONS)
    assert planned.count_documents({"pending": True}) == 0
