"""Service tier: what the planner asks the store for one booking, on the real local store.
In the busy hour the planner's batches of bookings held transactions open for 10-15 s, and
every other writer of the message book (the announcer, the dispatchers) aborted against them
(issue 14): a booking read its client and their preferences twice and planned twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pymongo

from services.notifications.projections import Planner
from shared.events import registry
from shared.outbox import message_from_document
from shared.projections import ProjectionStore, Record
from testkit.kernel import Commands


def records_of(settings, feed, service: str) -> list[Record]:
    store = feed.stores[service]
    topic = settings.topic(service)
    return [
        Record(topic, 0, d["position"], message_from_document(d))
        for d in store.events.find().sort("position", 1)
    ]


@contextmanager
def heard_planner(settings) -> Iterator[tuple[ProjectionStore, int, Commands]]:
    """The planner's store (its active generation made) on a client whose commands are heard."""
    listener = Commands()
    uri = settings.mongo_uri_of("notifications")  # notifications' own store, as the services'
    mongo = pymongo.MongoClient(uri, tz_aware=True, event_listeners=[listener])
    try:
        store = ProjectionStore(mongo, settings.database("notifications"), Planner(), registry)
        generation = store.active_generation()
        store.ensure_generation(generation)
        yield store, generation, listener
    finally:
        mongo.close()


@contextmanager
def planned_bookings(settings, feed, n: int) -> Iterator[tuple[ProjectionStore, int, Commands]]:
    """`heard_planner` once it planned `n` bookings (s0, s1, ...) three days ahead, an hour
    apart, of one client told by e-mail at c1@client.test."""
    feed.therapist()
    feed.client(channels=("email",), email="c1@client.test")
    for i in range(n):
        feed.booked(sid=f"s{i}", starts=datetime.now(UTC) + timedelta(days=3, hours=i))
    with heard_planner(settings) as (store, generation, listener):
        records = records_of(settings, feed, "scheduling") + records_of(settings, feed, "records")
        assert store.apply(records, generation) == n + 2
        yield store, generation, listener


def one_dispatch(settings, store: ProjectionStore, before=lambda: None) -> int:
    """One batch of a dispatcher whose reads of the planner's directory and of the clients'
    preferences go through `store`'s (heard) client; its claims and records stay on its own,
    which its transactions need. `before()` runs once it is set up. How many it claimed."""
    from services.notifications.application.book import MessageBook
    from services.notifications.workers.dispatcher import Dispatcher

    dispatcher = Dispatcher(settings)
    dispatcher._setup()
    dispatcher.directory = dispatcher.delivery.directory = store
    dispatcher.book.preferences = MessageBook(store.db).preferences
    before()
    try:
        return dispatcher.dispatch_together()
    finally:
        dispatcher._recorded()  # what it sent, recorded (as its loop does before resting)
        for pool in (dispatcher._pool, dispatcher._recorder):
            if pool is not None:
                pool.shutdown(wait=True)


def reads_of(listener: Commands, collection: str) -> int:
    return sum(1 for c in listener.commands if c.get("find") == collection)


def test_a_booking_reads_the_client_and_preferences_once_for_its_notices_and_plans_once(
    nsettings, feed
):
    feed.therapist()
    feed.client(channels=("email", "sms"))
    feed.booked(sid="s1")
    with heard_planner(nsettings) as (store, generation, listener):
        booking = records_of(nsettings, feed, "scheduling")
        registration = records_of(nsettings, feed, "records")
        assert store.apply(booking[:-1] + registration, generation) == 2  # therapist, client
        listener.commands.clear()

        assert store.apply(booking[-1:], generation) == 1
        applying = list(listener.commands)
        book = store.db["messages"]
        planned = sorted(d["_id"] for d in book.find({"session_id": "s1"}))
        assert [k.split(":")[0] for k in planned] == ["confirmation"] * 2 + ["reminder"] * 2
        clients = f"clients__g{generation}"
        # one read for whether the client is known (a booking may come before them) and for
        # their contact; was three (the contact read again for the reminders)
        assert reads_of(listener, clients) == 1, [c.get("find") for c in listener.commands]
        assert reads_of(listener, "preferences") == 1  # was two
        plan_writes = [
            c for c in listener.commands if "messages" in (c.get("update"), c.get("insert"))
        ]
        # one plan of the confirmation and the reminders, one insert of the four new
        # messages; no void of other reminders, since nothing was planned for a session not
        # seen before (was three writes)
        assert [c.get("insert") for c in plan_writes] == ["messages"], plan_writes
        assert len(plan_writes[0]["documents"]) == 4
        # the save writes the session by _id and, as it was new, does not read it (a read
        # before the write was a quarter of the planner's wait in the busy hour); no
        # findAndModify, which the local store answers by reading every session (gaps of
        # the local servers)
        sessions = f"sessions__g{generation}"
        assert reads_of(listener, sessions) == 0
        assert [c.get("update") for c in applying if c.get("update") == sessions] == [sessions]
        assert "findAndModify" not in listener.names
        book_reads = [c for c in applying if c.get("find") == "messages"]
        # one read of the book, by key, for the plan and for a confirmation sent as the
        # person booked by link (was two: the look by link had its own)
        assert len(book_reads) == 1, [c["filter"] for c in book_reads]
        keys = set(book_reads[0]["filter"]["_id"]["$in"])
        assert keys >= {"confirmation:s1:email", "confirmation:s1:sms"}, keys
        assert keys >= set(planned), keys


def test_a_session_seen_before_is_read_after_its_write_only_when_planned_from(nsettings, feed):
    """A fact about a session the planner knows writes it first: its attendance (which
    plans nothing from it) is not read back; its cancellation, whose notice is planned
    from the session as saved, reads it once, after the write."""
    feed.therapist()
    feed.client(channels=("email",))
    feed.booked(sid="s1")
    feed.booked(sid="s2")
    extra = {
        "SessionAttended": {"kind": "treatment"},
        "SessionCancelled": {"by": "client", "reason": "unwell", "late": False},
    }
    with heard_planner(nsettings) as (store, generation, listener):
        before = records_of(nsettings, feed, "scheduling") + records_of(nsettings, feed, "records")
        assert store.apply(before, generation) == 4
        sessions = f"sessions__g{generation}"
        kept = store.db[sessions].find_one({"_id": "s1"})
        for sid, type_ in (("s1", "SessionAttended"), ("s2", "SessionCancelled")):
            booked = store.db[sessions].find_one({"_id": sid})
            times = {"starts_at": booked["starts_at"], "ends_at": booked["ends_at"]}
            facts = {"session_id": sid, "client_id": "c1", "therapist_id": "t1", **times}
            feed("scheduling", f"session-{sid}", type_, **facts, **extra[type_])
        attended, cancelled = records_of(nsettings, feed, "scheduling")[-2:]

        listener.commands.clear()
        assert store.apply([attended], generation) == 1
        on_sessions = [c for c in listener.commands if sessions in (c.get("update"), c.get("find"))]
        assert [("update" in c) for c in on_sessions] == [True], on_sessions
        saved = store.db[sessions].find_one({"_id": "s1"})
        assert saved["status"] == "attended" and saved["video_link"] == kept["video_link"]

        listener.commands.clear()
        assert store.apply([cancelled], generation) == 1
        on_sessions = [c for c in listener.commands if sessions in (c.get("update"), c.get("find"))]
        assert [("update" in c) for c in on_sessions] == [True, False], on_sessions
        notice = store.db["messages"].find_one({"kind": "cancelled", "session_id": "s2"})
        assert notice is not None and notice["status"] == "pending"


def test_a_batch_reads_a_client_once_until_a_fact_about_clients_changes_them(nsettings, feed):
    """A course books sixteen sessions for one client: the batch reads the client and their
    preferences once, not for every booking; a correction of the client's channels in the
    same batch is read again, and the bookings after it are planned on the new channels."""
    feed.therapist()
    feed.client(channels=("email",))
    for n in range(4):
        feed.booked(sid=f"s{n}")
    feed(
        "records",
        "client-c1",
        "ClientDetailsCorrected",
        client_id="c1",
        reminder_channels=["sms"],
        reason="the client asked for texts",
    )
    feed.booked(sid="s4")
    with heard_planner(nsettings) as (store, generation, listener):
        scheduling = records_of(nsettings, feed, "scheduling")
        registry_records = records_of(nsettings, feed, "records")
        therapist, bookings, last = scheduling[0], scheduling[1:5], scheduling[5]
        assert store.apply([therapist, registry_records[0]], generation) == 2
        listener.commands.clear()

        batch = [*bookings, registry_records[1], last]
        assert store.apply(batch, generation) == 6
        clients = f"clients__g{generation}"
        # once for the four bookings, once for the correction's re-planning of their
        # reminders, once for the booking after it (was fourteen: two per booking, one per
        # reminder re-planned)
        assert reads_of(listener, clients) == 3, [c.get("find") for c in listener.commands]
        assert reads_of(listener, "preferences") == 3
        book = store.db["messages"]
        channels = {d["session_id"]: d["channel"] for d in book.find({"kind": "confirmation"})}
        assert channels == {"s0": "email", "s1": "email", "s2": "email", "s3": "email", "s4": "sms"}


def test_a_message_on_its_way_reads_the_planners_generation_once(nsettings, feed, mail):
    """A confirmation on its way looks up the client's address and checks that the session
    is still booked: two reads of the planner's directory, from one generation read once
    (was read before each of them)."""
    from services.notifications.application.book import MessageBook
    from services.notifications.application.config import NotifyConfig
    from services.notifications.workers.delivery import Delivery

    feed.therapist()
    feed.client(channels=("email",), email="c1@client.test")
    feed.booked(sid="s1")
    with heard_planner(nsettings) as (store, generation, listener):
        records = records_of(nsettings, feed, "scheduling") + records_of(nsettings, feed, "records")
        assert store.apply(records, generation) == 3
        message = store.db["messages"].find_one({"kind": "confirmation", "channel": "email"})
        delivery = Delivery(store, MessageBook(store.db), NotifyConfig.from_env(nsettings), "t")
        listener.commands.clear()

        delivery.deliver(message)
        generation_reads = [c for c in listener.commands if c.get("find") == "projection_meta"]
        assert len(generation_reads) == 1, [c.get("find") for c in listener.commands]
        assert reads_of(listener, f"clients__g{generation}") == 1
        assert reads_of(listener, f"sessions__g{generation}") == 1  # still booked, as planned
    assert len(mail.to("c1@client.test")) == 1


def test_a_dispatchers_batch_reads_the_directory_once_for_all_its_messages(nsettings, feed, mail):
    """Three confirmations sent in one batch: the planner's active generation is read once
    (it was read once for each message), and the client, the sessions and the client's
    preferences once each for the three messages (they were read once for each message,
    three reads per message: issue 14)."""
    with planned_bookings(nsettings, feed, 3) as (store, generation, listener):
        assert one_dispatch(nsettings, store, before=listener.commands.clear) == 3
        generation_reads = [c for c in listener.commands if c.get("find") == "projection_meta"]
        assert len(generation_reads) == 1, [c.get("find") for c in listener.commands]
        assert reads_of(listener, f"sessions__g{generation}") == 1  # each still booked
        assert reads_of(listener, f"clients__g{generation}") == 1
        assert reads_of(listener, "preferences") == 1
    assert len(mail.to("c1@client.test")) == 3


def test_a_message_read_with_its_batch_sees_the_appointment_moved_before_the_batch(
    nsettings, feed, mail
):
    """What the batch read stands for the store: a confirmation whose appointment moved
    before the batch looked (its session no longer at the time the message names) is voided,
    not sent, whether it is read alone or with others."""
    with planned_bookings(nsettings, feed, 2) as (store, generation, _):
        later = datetime.now(UTC) + timedelta(days=9)
        store.physical("sessions", generation).update_one(
            {"_id": "s1"}, {"$set": {"starts_at": later}}
        )
        assert one_dispatch(nsettings, store) == 2
        statuses = {
            d["session_id"]: d["status"]
            for d in store.db["messages"].find({"kind": "confirmation", "channel": "email"})
        }
        assert statuses == {"s0": "sent", "s1": "voided"}
    assert len(mail.to("c1@client.test")) == 1


def _planned(store, generation) -> tuple[dict, dict]:
    """The book's messages and the planner's sessions, without the times they were written
    (a message's time to be announced as its distance from the time it was planned)."""
    messages = {
        d["_id"]: {
            **{k: v for k, v in d.items() if k not in ("created_at", "voided_at")},
            "announce_at": d["announce_at"] and d["announce_at"] - d["created_at"],
        }
        for d in store.db["messages"].find()
    }
    sessions = {d["_id"]: d for d in store.physical("sessions", generation).find()}
    return messages, sessions


@contextmanager
def heard_batch(settings, feed, known: int):
    """`heard_planner` once it applied scheduling's first event (the therapist) and the
    clients' registrations, `known` events in all: (store, generation, listener, scheduling's
    records, the records applied), the commands heard from then on."""
    with heard_planner(settings) as (store, generation, listener):
        scheduling = records_of(settings, feed, "scheduling")
        applied = [scheduling[0], *records_of(settings, feed, "records")]
        assert store.apply(applied, generation) == known
        listener.commands.clear()
        yield store, generation, listener, scheduling, applied


def _planned_one_by_one(settings, store: ProjectionStore, records: list[Record]) -> tuple:
    """`_planned` of `records` applied one batch each, by a planner of a database of its own."""
    alone = ProjectionStore(
        store.mongo, settings.database("notifications") + "_alone", Planner(), registry
    )
    first = alone.active_generation()
    alone.ensure_generation(first)
    alone.ensure_outside()
    try:
        for record in records:
            assert alone.apply([record], first) == 1
        return _planned(alone, first)
    finally:
        store.mongo.drop_database(alone.db.name)


def test_a_batchs_bookings_are_planned_together_as_one_by_one(nsettings, feed):
    """Four bookings of two clients in one batch are planned together: one read of the
    clients, one of their preferences, one of which sessions the planner knows, one write
    of the four, one read of their messages in the book and one write of them (was three
    round trips per booking, and two per client: issue 14). What is planned is what
    planning them one batch each plans."""
    feed.therapist()
    feed.client(channels=("email", "sms"))
    feed.client(cid="c2", channels=("email",))
    starts = datetime.now(UTC) + timedelta(days=3)
    for n in range(4):
        feed.booked(sid=f"s{n}", cid=f"c{1 + n % 2}", starts=starts + timedelta(hours=n))
    with heard_batch(nsettings, feed, 3) as (store, generation, listener, scheduling, known):
        assert store.apply(scheduling[1:], generation) == 4
        sessions, book = f"sessions__g{generation}", "messages"
        assert reads_of(listener, sessions) == 1, [c.get("find") for c in listener.commands]
        assert [len(c["updates"]) for c in listener.commands if c.get("update") == sessions] == [4]
        assert reads_of(listener, book) == 1
        assert [len(c["documents"]) for c in listener.commands if c.get("insert") == book] == [12]
        # both clients in one read, and their preferences in one (`Planner.prepare`; was
        # one read of each per client)
        assert reads_of(listener, f"clients__g{generation}") == 1
        assert reads_of(listener, "preferences") == 1
        together = _planned(store, generation)

        assert _planned_one_by_one(nsettings, store, [*known, *scheduling[1:]]) == together
    assert {k.split(":")[0] for k in together[0]} == {"confirmation", "reminder"}


def test_bookings_gathered_in_a_batch_are_planned_before_the_next_fact_about_them(nsettings, feed):
    """A booking, its move and another booking in one batch: the move is planned after the
    booking it moves (its confirmation voided, its reminders moved), as one by one."""
    feed.therapist()
    feed.client(channels=("email",))
    starts = datetime.now(UTC) + timedelta(days=3)
    feed.booked(sid="s1", starts=starts)
    moved = starts + timedelta(days=1)
    moved = moved.replace(microsecond=moved.microsecond // 1000 * 1000)  # as the store keeps it
    feed.rescheduled(starts, moved)
    feed.booked(sid="s2", starts=starts + timedelta(hours=2))
    feed.booked(sid="s3", starts=starts + timedelta(hours=4))
    with heard_planner(nsettings) as (store, generation, listener):
        scheduling = records_of(nsettings, feed, "scheduling")
        registrations = records_of(nsettings, feed, "records")
        assert store.apply([scheduling[0], *registrations], generation) == 2
        assert store.apply(scheduling[1:], generation) == 4
        messages, sessions = _planned(store, generation)
    status = {k: m["status"] for k, m in messages.items()}
    assert status["confirmation:s1:email"] == "voided"
    assert status["confirmation:s2:email"] == status["confirmation:s3:email"] == "pending"
    assert any(k.startswith("rescheduled:s1:") and v == "pending" for k, v in status.items())
    reminders = [m for m in messages.values() if m["kind"] == "reminder"]
    s1 = {m["next_at"] for m in reminders if m["session_id"] == "s1" and m["status"] == "pending"}
    assert s1 == {moved - timedelta(hours=24)}
    assert sessions["s1"]["starts_at"] == moved and sessions["s1"]["status"] == "booked"


def test_ends_of_sessions_in_a_batch_go_together_after_its_bookings_as_one_by_one(nsettings, feed):
    """Bookings and attendances (or missed sessions) interleaved in one batch: the bookings
    are planned together, then the ends of the sessions go together, their sessions in one
    write and their reminders voided in one (one at a time, each was two writes and cut the
    batch's bookings in two: issue 14). What is planned is what one by one plans."""
    feed.therapist()
    feed.client(channels=("email", "sms"))
    starts = datetime.now(UTC) + timedelta(days=3)

    def over(sid: str, type_: str, at: datetime) -> None:
        facts = {"client_id": "c1", "therapist_id": "t1", "starts_at": at}
        facts["ends_at"] = at + timedelta(minutes=50)
        feed("scheduling", f"session-{sid}", type_, session_id=sid, kind="treatment", **facts)

    for n in range(4):
        feed.booked(sid=f"s{n}", starts=starts + timedelta(hours=n))
        if n % 2 == 0:
            over(f"s{n}", "SessionAttended" if n == 0 else "SessionMissed", starts)
    with heard_batch(nsettings, feed, 2) as (store, generation, listener, scheduling, known):
        assert store.apply(scheduling[1:], generation) == 6
        sessions, book = f"sessions__g{generation}", "messages"
        # the four bookings' sessions, then the two ends' (was 2 + 1 + 1 + 1 + 1 writes)
        assert [len(c["updates"]) for c in listener.commands if c.get("update") == sessions] == [
            4,
            2,
        ]
        # the bookings' messages in one insert, the two sessions' reminders voided in one
        assert [len(c["documents"]) for c in listener.commands if c.get("insert") == book] == [16]
        assert [len(c["updates"]) for c in listener.commands if c.get("update") == book] == [2]
        together = _planned(store, generation)

        assert _planned_one_by_one(nsettings, store, [*known, *scheduling[1:]]) == together
    messages, saved = together
    assert {sid: saved[sid]["status"] for sid in saved} == {
        "s0": "attended",
        "s1": "booked",
        "s2": "missed",
        "s3": "booked",
    }
    voided = {m["session_id"] for m in messages.values() if m["status"] == "voided"}
    assert voided == {"s0", "s2"}


def test_questionnaire_links_in_a_batch_go_together_with_its_bookings_as_one_by_one(
    nsettings, feed
):
    """Measures requests a questionnaire for every booking, so in the busy hour a batch holds
    bookings and requests in turn. A request was planned alone (a read and a write of the
    book) and cut the bookings in two, so each booking went alone too; now the bookings go
    together and the requests' links together after them: one write of the sessions, one
    read of the book and one insert of every message. What is planned is what one by one
    plans."""
    feed.therapist()
    feed.client(channels=("email", "sms"))
    starts = datetime.now(UTC) + timedelta(days=3)
    for n in range(4):
        at = starts + timedelta(hours=n)
        feed.booked(sid=f"s{n}", starts=at)
        feed(
            "measures",
            f"request-q{n}",
            "QuestionnaireRequested",
            request_id=f"q{n}",
            client_id="c1",
            therapist_id="t1",
            session_id=f"s{n}",
            instruments=["PHQ-9", "GAD-7"],
            due_at=at - timedelta(hours=48),
            session_starts_at=at,
            expires_at=at,
        )
    with heard_batch(nsettings, feed, 2) as (store, generation, listener, scheduling, known):
        requests = records_of(nsettings, feed, "measures")
        batch = [r for pair in zip(scheduling[1:], requests, strict=True) for r in pair]
        assert store.apply(batch, generation) == 8
        sessions, book = f"sessions__g{generation}", "messages"
        assert [len(c["updates"]) for c in listener.commands if c.get("update") == sessions] == [4]
        # the bookings' confirmations and reminders (16), then the links (8), each one insert
        assert [len(c["documents"]) for c in listener.commands if c.get("insert") == book] == [
            16,
            8,
        ]
        assert reads_of(listener, book) == 2  # was one per booking and one per request
        together = _planned(store, generation)

        assert _planned_one_by_one(nsettings, store, [*known, *batch]) == together
    links = [k for k, m in together[0].items() if m["kind"] == "questionnaire_link"]
    assert len(links) == 8 and {together[0][k]["status"] for k in links} == {"pending"}
