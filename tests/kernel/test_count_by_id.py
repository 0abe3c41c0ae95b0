"""`shared.mongo.count_by_id`, the counter of the rate limits and sign-in lockouts, against
the real local store: exact under a race, as `find_one_and_update` was, and sent as a write
and a read by `_id` (the local store answers a findAndModify by reading every document of
the collection: bench/README.md, gaps of the local servers)."""

from __future__ import annotations

import threading

import pymongo

from shared.mongo import count_by_id
from testkit.kernel import heard_client


def test_sixteen_racing_increments_each_see_their_own_count(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        attempts = mongo[settings.database("kernel")]["count_by_id"]
        attempts.drop()
        start, counts, lock = threading.Barrier(16), [], threading.Lock()

        def one():
            start.wait()
            doc = count_by_id(attempts, "ip:203.0.113.9:0", {"$inc": {"count": 1}})
            with lock:
                counts.append(doc["count"])

        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(counts) == list(range(1, 17))  # none shared, none lost
        assert attempts.find_one({"_id": "ip:203.0.113.9:0"})["count"] == 16
    finally:
        mongo.close()


def test_a_count_is_a_write_and_a_read_by_id(settings):
    with heard_client(settings.mongo_uri) as (mongo, heard):
        attempts = mongo[settings.database("kernel")]["count_by_id_heard"]
        attempts.drop()
        heard.names.clear()
        heard.commands.clear()
        first = count_by_id(attempts, "k", {"$inc": {"n": 1}, "$setOnInsert": {"since": 1}})
        assert first == {"_id": "k", "n": 1, "since": 1}
        assert count_by_id(attempts, "k", {"$inc": {"n": 1}})["n"] == 2
        assert "findAndModify" not in heard.names
        updates = [c for c in heard.commands if "update" in c]
        assert updates and all(u["updates"][0]["q"] == {"_id": "k"} for u in updates)
