"""Measures' board computes the same courses' outcomes whether a batch holds one event or all
of them, including an attendance that arrives before its booking, and a batch reads what it
needs for every course together instead of once per booking (issue 14: the dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pymongo

import shared.contracts  # noqa: F401  (registers the events the board reads)
from services.measures.projections import MeasuresBoard
from shared.events import Actor, Event, new_id, registry
from shared.projections import ProjectionStore, Record
from testkit.kernel import Commands

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _event(type_: str, stream: str, version: int, at: datetime, **data) -> bytes:
    event = Event(
        event_id=new_id(),
        type=type_,
        schema_version=1,
        stream_id=stream,
        stream_version=version,
        occurred_at=at,
        recorded_at=at,
        actor=Actor("tester", "admin"),
        correlation_id="board",
        causation_id=None,
        data=data,
    )
    return registry.to_message(event)


def _session(session_id: str, client: str, day: int, **more) -> dict:
    starts = T0 + timedelta(days=7 * day)
    return {
        "session_id": session_id,
        "client_id": client,
        "therapist_id": "t-1",
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=50),
        **more,
    }


def booked(session_id, client, day, course=None, number=None):
    facts = _session(session_id, client, day, kind="treatment", modality="video")
    return _event("SessionBooked", session_id, 1, T0, **facts, course_id=course, number=number)


def attended(session_id, client, day, course=None):
    facts = _session(session_id, client, day, kind="treatment", course_id=course)
    return _event("SessionAttended", session_id, 2, T0 + timedelta(days=7 * day), **facts)


def completed(client, day, phq9, gad7, course=None):
    response = new_id()
    scores = [
        {"instrument": "PHQ-9", "answers": [], "total": phq9, "band": None, "prorated": False},
        {"instrument": "GAD-7", "answers": [], "total": gad7, "band": None, "prorated": False},
    ]
    return _event(
        "QuestionnaireCompleted",
        response,
        1,
        T0 + timedelta(days=7 * day),
        response_id=response,
        client_id=client,
        therapist_id="t-1",
        completed_at=T0 + timedelta(days=7 * day),
        source="staff",
        scores=scores,
        course_id=course,
    )


def story() -> list[bytes]:
    """Client k-1 answers once outside any course; session s-1's attendance arrives before
    its booking (so it first counts towards the answers outside a course), then its booking
    puts it in course c-1; a second session of c-1 is booked and attended; c-1 is scored
    twice. Client k-2: a course of three attended sessions, scored twice."""
    messages = [
        completed("k-1", 0, 12, 9),
        attended("s-1", "k-1", 1, course="c-1"),
        completed("k-1", 1, 16, 12, course="c-1"),
        booked("s-1", "k-1", 1, course="c-1", number=1),
        booked("s-2", "k-1", 2, course="c-1", number=2),
        attended("s-2", "k-1", 2, course="c-1"),
        completed("k-1", 2, 7, 5, course="c-1"),
    ]
    for n in range(3):
        messages += [
            booked(f"s-k2-{n}", "k-2", n, course="c-2", number=n + 1),
            attended(f"s-k2-{n}", "k-2", n, course="c-2"),
        ]
    return messages + [completed("k-2", 0, 20, 15, "c-2"), completed("k-2", 3, 18, 14, "c-2")]


def _store(settings, mongo, tag: str) -> tuple[ProjectionStore, int]:
    store = ProjectionStore(mongo, settings.database(f"measures{tag}"), MeasuresBoard(), registry)
    return store, store.active_generation()


def _outcomes(store) -> dict:
    return {
        d["_id"]: (d["outcome"]["attended_sessions"], d["outcome"]["recovered"])
        for d in store.reader("episodes").find()
    }


def test_one_batch_and_one_event_per_batch_give_every_course_the_same_outcome(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        records = [Record("t", 0, i, m) for i, m in enumerate(story())]
        singly, generation = _store(settings, mongo, "one")
        for record in records:
            singly.apply([record], generation)
        together, generation = _store(settings, mongo, "all")
        assert together.apply(records, generation) == len(records)
        expected = {
            # the early attendance moved to its course: none left outside it
            "k-1:no-course": (0, None),
            # c-1: two attended; PHQ-9 16 -> 7 and GAD-7 12 -> 5: a case that recovered
            "c-1": (2, True),
            # c-2: three attended; still a case at the end
            "c-2": (3, False),
        }
        assert _outcomes(singly) == expected
        assert _outcomes(together) == expected
    finally:
        mongo.close()


def test_a_batch_of_bookings_reads_the_board_a_constant_number_of_times(settings):
    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        store, generation = _store(settings, mongo, "count")
        messages = []
        for n in range(20):
            client = f"k-{n}"
            messages += [
                completed(client, 0, 15, 11, f"c-{n}"),
                booked(f"s-{n}", client, 1, course=f"c-{n}", number=1),
                attended(f"s-{n}", client, 1, course=f"c-{n}"),
            ]
        listener.names.clear()
        assert store.apply([Record("t", 0, i, m) for i, m in enumerate(messages)], generation)
        reads = [n for n in listener.names if n in ("find", "aggregate", "findAndModify")]
        # was a findAndModify per booking and per attendance, and a find and a count per
        # course: 80 reads for these 20 courses; now the sessions attended, the courses and
        # their attendance counts, each once (and the processed ids)
        assert "findAndModify" not in reads, listener.names
        assert len(reads) <= 6, listener.names
        assert {k: v[0] for k, v in _outcomes(store).items()} == {f"c-{n}": 1 for n in range(20)}
    finally:
        mongo.close()


def test_bookings_that_move_no_attended_session_recompute_no_outcome(settings):
    """A booking changes a course's outcome only when its session was attended already
    (the attendance then moves to its course): the bookings of clients with scores, outside
    a course or in one, read no course and count no attendance (issue 14: each batch of the
    measures consumer read the courses and aggregated their sessions)."""
    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        store, generation = _store(settings, mongo, "moves")
        scored = [completed(f"k-{n}", 0, 15, 11, f"c-{n}") for n in range(3)]
        scored += [completed(f"k-{n}", 0, 15, 11) for n in range(3)]
        assert store.apply([Record("t", 0, i, m) for i, m in enumerate(scored)], generation)
        before = store.reader("episodes").find_one({"_id": "c-0"})
        bookings = [booked(f"s-{n}", f"k-{n}", 1) for n in range(3)]
        bookings += [booked(f"s-c{n}", f"k-{n}", 1, course=f"c-{n}", number=1) for n in range(3)]
        listener.commands.clear()
        offset = len(scored)
        records = [Record("t", 0, offset + i, m) for i, m in enumerate(bookings)]
        assert store.apply(records, generation) == len(bookings)
        episodes, sessions = f"episodes__g{generation}", f"sessions__g{generation}"
        read = [(c.get("find") or c.get("aggregate")) for c in listener.commands]
        assert episodes not in read, read
        assert read.count(sessions) == 1, read  # were any of the course's sessions attended?
        assert store.reader("episodes").find_one({"_id": "c-0"}) == before
    finally:
        mongo.close()


def test_a_completed_questionnaire_reaches_the_dashboard_in_one_read_and_one_write(settings):
    """A score's batch reads the course before it writes anything, then sends its writes
    (the response, the course's new score and outcome, the positions and offsets) together:
    the read of the course sent the batch's writes first, and the course's attended
    sessions were counted again, two round trips more in the transaction between a
    completed questionnaire and the dashboard (issue 14). The outcome is the one computed
    from every score and the sessions attended."""
    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        store, generation = _store(settings, mongo, "one_write")
        first = [
            booked("s-1", "k-1", 1, course="c-1", number=1),
            attended("s-1", "k-1", 1, course="c-1"),
            completed("k-1", 0, 16, 12, "c-1"),
        ]
        assert store.apply([Record("t", 0, i, m) for i, m in enumerate(first)], generation)
        listener.commands.clear()
        assert store.apply([Record("t", 0, 3, completed("k-1", 1, 7, 5, "c-1"))], generation)
        names = [next(iter(c)) for c in listener.commands]
        # the course, and its score, outcome, positions and offsets: its attended sessions
        # are not counted again (no attendance in the batch; the outcome holds the count)
        assert names == ["find", "find", "bulkWrite", "commitTransaction"], names
        read = [c["find"] for c in listener.commands[:2]]
        assert read == ["projection_processed", f"episodes__g{generation}"], read
        episode = store.reader("episodes").find_one({"_id": "c-1"})
        assert [m["phq9"] for m in episode["measures"]] == [16, 7]
        assert episode["outcome"]["recovered"] is True, episode["outcome"]
        assert episode["outcome"]["attended_sessions"] == 1
    finally:
        mongo.close()


def test_a_course_with_an_outcome_counts_an_attendance_in_the_batch_of_its_next_score(settings):
    """The count kept in a course's outcome is used only while no attendance (or booking
    moving one) is in the batch: a score before an attendance in one batch, or after it,
    or in batches of one, gives the same count."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        start = [
            booked("s-1", "k-1", 1, course="c-1", number=1),
            attended("s-1", "k-1", 1, course="c-1"),
            completed("k-1", 0, 16, 12, "c-1"),
        ]
        later = [
            completed("k-1", 2, 12, 9, "c-1"),
            booked("s-2", "k-1", 2, course="c-1", number=2),
            attended("s-2", "k-1", 2, course="c-1"),
            completed("k-1", 3, 7, 5, "c-1"),
            attended("s-0", "k-1", 0),  # outside the course, before a booking puts it there
            booked("s-0", "k-1", 0, course="c-1", number=3),
        ]
        for tag, batches in (("whole", [start, later]), ("singly", [[m] for m in start + later])):
            store, generation = _store(settings, mongo, tag)
            offset = 0
            for batch in batches:
                records = [Record("t", 0, offset + i, m) for i, m in enumerate(batch)]
                assert store.apply(records, generation) == len(batch)
                offset += len(batch)
            assert _outcomes(store) == {"c-1": (3, True)}, tag
    finally:
        mongo.close()
