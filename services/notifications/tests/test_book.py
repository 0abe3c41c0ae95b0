"""The message book's planning rules, against the real local store: a fact replayed late
never undoes a newer one, a newer fact revives what an older one voided, and what was sent
(or is being sent) stays as it is, all in the few round trips of `MessageBook.plan`."""

from datetime import UTC, datetime, timedelta

from services.notifications.application.book import MessageBook
from shared.mongo import client as mongo_client
from testkit.kernel import heard_client

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def message(key, text, **extra):
    return {"_id": key, "kind": "confirmation", "channel": "email", "text": text, **extra}


def state(book, key):
    d = book.messages.find_one({"_id": key})
    return d["status"], d["text"], d["as_of"]


def lapsed_claim(now: datetime, **extra) -> dict:
    """An urgent message a sender claimed and died holding: its lease ran out a second ago."""
    from services.notifications.application.book import SENDING
    from services.notifications.domain.plans import URGENT

    return {
        "_id": "orphan",
        "status": SENDING,
        "priority": URGENT,
        "next_at": now,
        "lease_until": now - timedelta(seconds=1),
        "attempts": 1,
        **extra,
    }


def test_planning_follows_the_facts_order_not_the_arrival_order(nsettings):
    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]
    book = MessageBook(db)
    book.plan([message("a", "v2"), message("b", "first")], T0 + timedelta(minutes=2))
    book.plan([message("a", "v1 late")], T0 + timedelta(minutes=1))  # older fact, replayed
    assert state(book, "a") == ("pending", "v2", T0 + timedelta(minutes=2))

    book.void({"_id": "b"}, "cancelled", T0 + timedelta(minutes=3))
    book.plan([message("b", "stale")], T0 + timedelta(minutes=3))  # not newer than the void
    assert state(book, "b")[0] == "voided"
    book.plan([message("b", "rebooked")], T0 + timedelta(minutes=4))
    assert state(book, "b") == ("pending", "rebooked", T0 + timedelta(minutes=4))
    revived = book.messages.find_one({"_id": "b"})
    assert revived["announced"] is False  # and its time to be announced is now (not due)
    assert revived["announce_at"] >= revived["created_at"]

    book.messages.update_one({"_id": "a"}, {"$set": {"status": "sent"}})
    book.plan([message("a", "v3"), message("c", "new")], T0 + timedelta(minutes=5))
    assert state(book, "a") == ("sent", "v2", T0 + timedelta(minutes=2))
    assert state(book, "c") == ("pending", "new", T0 + timedelta(minutes=5))
    assert book.messages.find_one({"_id": "c"})["attempts"] == 0


def test_a_fact_planning_four_messages_costs_two_round_trips(nsettings):
    """Four new messages: one read and one insert of the four (an upsert of each was one
    update command, which the local store answers with a read and a write per message)."""
    with heard_client(nsettings.mongo_uri) as (mongo, seen):
        book = MessageBook(mongo[nsettings.database("notifications")])
        planned = [message(f"risk:{i}", "alert") for i in range(4)]
        book.plan(planned, T0)
        assert seen.names == ["find", "insert"]
        assert len(seen.commands[1]["documents"]) == 4
        stored = list(book.messages.find({"_id": {"$in": [m["_id"] for m in planned]}}))
        assert len(stored) == 4
        assert {(d["status"], d["attempts"], d["announced"], d["as_of"]) for d in stored} == {
            ("pending", 0, False, T0)
        }


def test_a_plan_read_by_its_caller_is_not_read_again(nsettings):
    """The planner reads the book once for a booking's plan and for whether the person was
    told as they booked by link: `plan` given what was read writes without reading. A
    known pending message of an older fact is updated, a new one inserted."""
    with heard_client(nsettings.mongo_uri) as (mongo, seen):
        book = MessageBook(mongo[nsettings.database("notifications")])
        book.plan([message("m1", "reminder")], T0)
        seen.names.clear()
        later = T0 + timedelta(minutes=5)
        replanned = [{**message("m1", "reminder"), "channel": "sms"}, message("m2", "reminder")]
        known = book.known(["m1", "m2", "elsewhere"])
        assert set(known) == {"m1"} and known["m1"]["kind"] == "confirmation"
        book.plan(replanned, later, known)
        assert seen.names == ["find", "insert", "update"]  # the read was `known`'s
        m1, m2 = book.messages.find_one({"_id": "m1"}), book.messages.find_one({"_id": "m2"})
        assert (m1["channel"], m1["as_of"], m1["status"]) == ("sms", later, "pending")
        assert (m2["as_of"], m2["status"]) == (later, "pending")


def test_a_claim_is_one_write_by_id_and_gives_the_message_as_stored(nsettings):
    """A claim reaches the store as one update by `_id` (without `$or`: the local store
    answers a findAndModify, or a filter with `$or`, by reading every message, bench/README.md,
    gaps of the local servers), and nothing is read after it: the message as claimed is the
    one found with the claim's changes, exactly what the store then holds. A message not due
    is not taken; one planned again or tried since it was found is not taken as found."""
    from services.notifications.application.book import PENDING, SENDING

    with heard_client(nsettings.mongo_uri) as (mongo, seen):
        book = MessageBook(mongo[nsettings.database("notifications")])
        now = datetime.now(UTC).replace(microsecond=0)
        as_of = now - timedelta(minutes=5)
        book.messages.insert_many(
            [
                {
                    "_id": "due",
                    "status": PENDING,
                    "priority": 1,
                    "next_at": now,
                    "attempts": 0,
                    "as_of": as_of,
                    "kind": "confirmation",
                    "channel": "email",
                },
                {"_id": "later", "status": PENDING, "next_at": now + timedelta(hours=1)},
                {
                    "_id": "moved",
                    "status": PENDING,
                    "priority": 1,
                    "next_at": now,
                    "attempts": 0,
                    "as_of": as_of,
                    "kind": "reminder",
                },
            ]
        )
        found = {d["_id"]: d for d in book.due(8, now)}
        assert set(found) == {"due", "moved"}
        seen.names.clear()
        seen.commands.clear()
        claimed = book.claim(found["due"], timedelta(minutes=2), "lane", now)
        assert claimed is not None and claimed["status"] == SENDING and claimed["attempts"] == 1
        assert seen.names == ["update"]
        (update,) = seen.commands[0]["updates"]
        assert update["q"]["_id"] == "due" and "$or" not in update["q"]
        assert claimed == book.messages.find_one({"_id": "due"})  # as stored, field by field
        assert book.claim(found["due"], timedelta(minutes=2), "other", now) is None  # taken
        later = book.messages.find_one({"_id": "later"})
        assert book.claim(later, timedelta(minutes=2), "lane", now) is None  # not due
        assert book.messages.find_one({"_id": "later"})["status"] == PENDING
        # planned again by a newer fact between the look and the claim: the look's copy says
        # the old thing, so it is not claimed (the next look finds the new one)
        book.plan([{"_id": "moved", "kind": "reminder", "next_at": now}], now)
        assert book.claim(found["moved"], timedelta(minutes=2), "lane", now) is None
        again = book.messages.find_one({"_id": "moved"})
        assert again["status"] == PENDING and again["as_of"] == now
        assert book.claim(again, timedelta(minutes=2), "lane", now)["as_of"] == now


def test_the_look_for_due_messages_is_served_by_the_index_and_keeps_urgency_first(nsettings):
    """Reminders weeks ahead wait in the book as pending messages. The look for what is due
    names the priority: with it, the local store serves the look from the (status, priority,
    next_at) index; without it, it read every pending message (bench/README.md, gaps of the
    local servers). The most urgent still come first, then the longest due."""
    from services.notifications.application.book import PENDING, SENT, ensure_indexes
    from services.notifications.domain.plans import NORMAL, URGENT

    with heard_client(nsettings.mongo_uri) as (mongo, seen):
        db = mongo[nsettings.database("notifications")]
        ensure_indexes(db)
        book = MessageBook(db)
        now = datetime.now(UTC)

        def pending(key, priority, due_in):
            return {"_id": key, "status": PENDING, "priority": priority, "next_at": now + due_in}

        book.messages.insert_many(
            [pending(f"ahead-{i}", NORMAL, timedelta(days=1 + i)) for i in range(50)]
            + [
                pending("normal-old", NORMAL, -timedelta(hours=2)),
                pending("normal-new", NORMAL, -timedelta(minutes=1)),
                pending("urgent", URGENT, -timedelta(seconds=1)),
                {"_id": "sent", "status": SENT, "priority": URGENT, "next_at": now},
            ]
        )
        seen.commands.clear()
        assert [d["_id"] for d in book.due(8, now)] == ["urgent", "normal-old", "normal-new"]
        assert [d["_id"] for d in book.due(2, now)] == ["urgent", "normal-old"]
        assert [d["_id"] for d in book.due(8, now, urgent_only=True)] == ["urgent"]
        looks = [c["filter"] for c in seen.commands if c.get("find") == "messages"]
        pending_looks = [f for f in looks if f["status"] == PENDING]
        assert len(pending_looks) == 5  # urgent then normal twice, urgent alone once
        assert all(f["priority"] in (URGENT, NORMAL) for f in pending_looks), pending_looks


def test_claims_taken_together_never_share_a_message(nsettings):
    """Two urgent lanes claiming at once take disjoint messages, a message whose sender died
    (lease run out) first, and nothing that is not due or not urgent."""
    import threading

    from services.notifications.application.book import PENDING, SENDING
    from services.notifications.domain.plans import URGENT

    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]
    book = MessageBook(db)
    now = datetime.now(UTC)
    docs = [
        {"_id": f"alert-{i}", "status": PENDING, "priority": URGENT, "next_at": now, "attempts": 0}
        for i in range(12)
    ]
    docs += [
        {
            "_id": "later",
            "status": PENDING,
            "priority": URGENT,
            "next_at": now + timedelta(hours=1),
        },
        {"_id": "routine", "status": PENDING, "priority": URGENT + 1, "next_at": now},
        lapsed_claim(now),
    ]
    book.messages.insert_many(docs)
    first = list(book.claim_many(timedelta(minutes=2), "lane-a", 3, urgent_only=True))
    assert first[0]["_id"] == "orphan" and first[0]["attempts"] == 2
    taken: dict[str, list[str]] = {"b": [], "c": []}

    def lane(name):
        while batch := list(book.claim_many(timedelta(minutes=2), name, 3, urgent_only=True)):
            taken[name] += [m["_id"] for m in batch]

    threads = [threading.Thread(target=lane, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everyone = [m["_id"] for m in first] + taken["b"] + taken["c"]
    assert sorted(everyone) == sorted(["orphan"] + [f"alert-{i}" for i in range(12)])
    assert len(everyone) == len(set(everyone)), "a message claimed twice"
    claimed = {d["_id"]: d["claimed_by"] for d in book.messages.find({"status": SENDING})}
    assert all(claimed[i] == n for n in taken for i in taken[n])
    assert book.messages.find_one({"_id": "later"})["status"] == PENDING
    assert book.messages.find_one({"_id": "routine"})["status"] == PENDING


def test_an_alerts_emails_are_claimed_before_its_inbox_entries(nsettings):
    from services.notifications.application.book import PENDING
    from services.notifications.domain.plans import URGENT

    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]
    book = MessageBook(db)
    now = datetime.now(UTC)
    book.messages.insert_many(
        [
            {
                "_id": f"risk:a1:{who}:{channel}",
                "status": PENDING,
                "priority": URGENT,
                "next_at": now,
                "attempts": 0,
                "channel": channel,
            }
            for who in ("therapist", "lead")
            for channel in ("inbox", "email")
        ]
    )
    claimed = [m["_id"] for m in book.claim_many(timedelta(minutes=2), "lane", 8, urgent_only=True)]
    assert [c.rsplit(":", 1)[1] for c in claimed] == ["email", "email", "inbox", "inbox"], claimed


def test_a_dispatcher_looks_for_lapsed_claims_at_its_first_batch_then_once_a_quarter_lease(
    nsettings,
):
    """A claim whose sender died is found a lease after it was made; looking for such claims
    before every batch was a third of the dispatchers' looks at the book in the busy hour
    (issue 14). A dispatcher looks at its first batch, then once per quarter of a lease, and
    then takes the lapsed claim over; a look without them does not find it."""
    import time
    from dataclasses import replace

    from services.notifications.application.config import NotifyConfig
    from services.notifications.workers.dispatcher import Dispatcher

    config = replace(NotifyConfig.from_env(nsettings), lease_seconds=2.0)
    dispatcher = Dispatcher(nsettings, config=config)
    dispatcher._setup()
    looked: list[bool] = []
    due = dispatcher.book.due

    def recording(*args, **kwargs):
        looked.append(kwargs.get("orphans", True))
        return due(*args, **kwargs)

    dispatcher.book.due = recording
    try:
        assert dispatcher.dispatch_together() == 0  # nothing due: the first look has them
        now = datetime.now(UTC)
        dispatcher.book.messages.insert_one(
            lapsed_claim(
                now,
                due_at=now,
                kind="risk_alert",
                channel="inbox",
                recipient="t1",
                client_id="c1",
                context={},
            )
        )
        assert dispatcher.dispatch_together() == 0  # within a quarter lease: not looked for
        assert [d["_id"] for d in due(8, now, orphans=False)] == []
        time.sleep(config.lease_seconds / 4 + 0.1)
        assert dispatcher.dispatch_together() == 1  # and now taken over
    finally:
        dispatcher._recorded()
        for pool in (dispatcher._pool, dispatcher._recorder):
            if pool is not None:
                pool.shutdown(wait=True)
    assert looked == [True, False, True]
    assert dispatcher.book.messages.find_one({"_id": "orphan"})["attempts"] == 2


def test_a_dispatcher_looks_again_only_while_a_look_comes_back_full(nsettings):
    """A step that sent what it found looked once more for nothing, and its loop then stepped
    again at once and looked a third time: two looks of three came back empty in the flows
    bench (issue 14). Now a look that found fewer than a batch ends the step, and the loop
    rests on its bell (`backlog` false); a full look is followed by another, and a step
    stopped at its cap with more due leaves a backlog for the loop to take at once."""
    from services.notifications.application.book import PENDING, SENDING
    from services.notifications.domain.plans import URGENT
    from services.notifications.workers.dispatcher import Dispatcher

    dispatcher = Dispatcher(nsettings)
    dispatcher._setup()
    looks: list[int] = []
    due = dispatcher.book.due

    def recording(limit, *args, **kwargs):
        found = due(limit, *args, **kwargs)
        looks.append(len(found))
        return found

    def alerts(*names: str) -> None:
        now = datetime.now(UTC)
        dispatcher.book.messages.insert_many(
            [
                {
                    "_id": n,
                    "status": PENDING,
                    "priority": URGENT,
                    "next_at": now,
                    "attempts": 0,
                    "kind": "risk_alert",
                    "channel": "inbox",
                    "recipient": "t1",
                    "client_id": "c1",
                    "due_at": now,
                    "context": {"instrument": "PHQ-9", "item": 9, "answer": 1, "indicated_at": now},
                    "announced": True,
                }
                for n in names
            ]
        )

    dispatcher.book.due = recording
    dispatcher.BATCH = 2
    try:
        alerts("a1", "a2", "a3")
        assert dispatcher.step() == 3
        assert looks == [2, 1] and not dispatcher.backlog  # full, then short: no third look
        looks.clear()
        assert dispatcher.step() == 0 and looks == [0] and not dispatcher.backlog
        looks.clear()
        alerts("b1", "b2", "b3")
        assert dispatcher.step(batch=2) == 2  # stopped at its cap, with one more due
        assert looks == [2] and dispatcher.backlog
        looks.clear()
        assert dispatcher.step(batch=2) == 1 and looks == [1] and not dispatcher.backlog
    finally:
        if dispatcher._pool is not None:
            dispatcher._pool.shutdown(wait=True)
    names = ["a1", "a2", "a3", "b1", "b2", "b3"]
    left = dispatcher.book.messages.count_documents({"_id": {"$in": names}, "status": SENDING})
    assert left == 0  # each one claimed was settled


def test_a_batch_s_claims_go_in_one_command_and_one_taken_meanwhile_is_left_out(nsettings):
    """Three messages found due: one is claimed by another sender between the look and the
    batch's claims. The batch's claims are one command, in one transaction; the two it took
    are read back by its token, and the third stays the other sender's."""
    from services.notifications.application.book import PENDING, SENDING

    with heard_client(nsettings.mongo_uri) as (mongo, seen):
        book = MessageBook(mongo[nsettings.database("notifications")])
        now = datetime.now(UTC).replace(microsecond=0)
        book.messages.insert_many(
            [
                {"_id": f"m{i}", "status": PENDING, "priority": 1, "next_at": now, "attempts": 0}
                for i in range(3)
            ]
        )
        found = book.due(8, now)
        other = book.claim(found[1], timedelta(minutes=2), "other", now)
        assert other is not None
        seen.names.clear()
        claimed = book.claim_all(found, timedelta(minutes=2), "lane", now)
        assert [m["_id"] for m in claimed] == ["m0", "m2"]
        # the claims, committed together, then which were ours
        assert seen.names == ["update", "commitTransaction", "find"]
        claims = seen.commands[len(seen.commands) - len(seen.names)]
        assert claims["autocommit"] is False and len(claims["updates"]) == 3
        stored = {d["_id"]: d for d in book.messages.find()}
        assert all(stored[m["_id"]] == m for m in claimed)  # as stored, field by field
        assert stored["m1"]["claimed_by"] == "other" and stored["m1"]["status"] == SENDING
        seen.names.clear()
        assert book.claim_all(found, timedelta(minutes=2), "lane", now) == []  # all taken
        more = [{**d, "_id": f"n{i}"} for i, d in enumerate(found)]
        book.messages.insert_many([dict(d) for d in more])
        seen.names.clear()
        assert len(book.claim_all(more, timedelta(minutes=2), "lane", now)) == 3
        assert seen.names == ["update", "commitTransaction"]  # all claimed: nothing read back


def test_a_book_made_by_an_earlier_version_loses_its_retired_indexes_and_keeps_its_messages(
    nsettings,
):
    """The status is in two of the book's indexes now, not six: every claim and every
    message sent rewrote each index holding it (issue 14). A book made before has the old
    compound indexes; starting a dispatcher or the API (`ensure_indexes`) drops them, keeps
    the current ones and every message, and a second start changes nothing. The looks that
    used the retired indexes still find what they found (a lapsed claim, a session's
    pending reminders, the voids not yet announced). A message planned before a message
    had its time to be announced (`announce_at`) gets it, as it would have been planned,
    so the announcer's look, which reads by that time, still finds it."""
    from pymongo import ASCENDING, IndexModel

    from services.notifications.application.book import (
        INDEXES,
        RETIRED,
        SENDING,
        SENT_SOON,
        ensure_indexes,
    )
    from services.notifications.domain.plans import URGENT

    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]
    old = [
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
        IndexModel([("void_announced", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("session_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("client_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("announced", ASCENDING)]),
    ]
    db["messages"].create_indexes(old)
    now = datetime.now(UTC)
    book = MessageBook(db)
    book.messages.insert_one(lapsed_claim(now))
    book.plan([message("r1", "reminder", session_id="s1", kind="reminder")], now)
    book.plan([message("r2", "reminder", session_id="s2", kind="reminder")], now)
    # planned by the earlier version: no time to be announced
    planned_at = (now - timedelta(minutes=5)).replace(microsecond=0)
    legacy = {"status": "pending", "announced": False, "created_at": planned_at}
    book.messages.insert_many(
        [
            {"_id": "due", "next_at": planned_at, **legacy},
            {"_id": "later", "next_at": now + timedelta(days=1), **legacy},
            {"_id": "alert", "next_at": planned_at, "priority": URGENT, **legacy},
        ]
    )
    assert set(RETIRED["messages"]) <= set(db["messages"].index_information())

    ensure_indexes(db)
    ensure_indexes(db)  # again, as the next process to start does
    times = {d["_id"]: d.get("announce_at", "none") for d in db["messages"].find()}
    assert times["due"] == planned_at + SENT_SOON and times["later"] == planned_at
    assert times["alert"] is None  # left to whoever sends it
    ready = {"announced": False, "announce_at": {"$lte": now}}
    assert {d["_id"] for d in db["messages"].find(ready)} == {"due", "later"}
    db["messages"].delete_many({"_id": {"$in": ["due", "later", "alert"]}})
    names = set(db["messages"].index_information())
    assert not names & set(RETIRED["messages"])
    wanted = {
        "_".join(f"{k}_{d}" for k, d in m.document["key"].items()) for m in INDEXES["messages"]
    }
    assert names == wanted | {"_id_"}
    assert db["messages"].count_documents({}) == 3

    found = book.due(5, now + timedelta(seconds=1))
    assert [d["_id"] for d in found if d["status"] == SENDING] == ["orphan"]
    assert book.keep_only({"session_id": "s1", "kind": "reminder"}, [], "moved", now) == 1
    assert [
        d["_id"] for d in db["messages"].find({"void_announced": False, "status": "voided"})
    ] == ["r1"]
