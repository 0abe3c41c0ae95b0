"""`shared.mongo.write_together`, the writes of several documents sent outside a caller's
transaction (a dispatcher's claims, a reactor's cleared flags), against the real local
store: several go as one command in one transaction, committed once; one goes alone; a
transaction that meets another's write is run again whole, and every write lands once."""

from __future__ import annotations

import threading
import time

import pymongo
from pymongo import UpdateOne

from shared.mongo import write_together
from testkit.kernel import heard_client


def test_several_writes_go_in_one_transaction_and_one_goes_alone(settings):
    with heard_client(settings.mongo_uri) as (mongo, heard):
        coll = mongo[settings.database("kernel")]["together"]
        coll.drop()
        coll.insert_many([{"_id": f"d{i}", "n": 0} for i in range(3)])
        heard.names.clear()
        result = write_together(
            coll, [UpdateOne({"_id": f"d{i}", "n": 0}, {"$inc": {"n": 1}}) for i in range(3)]
        )
        assert result.modified_count == 3
        assert heard.names == ["update", "commitTransaction"]
        sent = heard.commands[-2]
        assert sent["autocommit"] is False and len(sent["updates"]) == 3
        heard.names.clear()
        assert write_together(coll, [UpdateOne({"_id": "d0"}, {"$inc": {"n": 1}})]).modified_count
        assert heard.names == ["update"] and "autocommit" not in heard.commands[-1]
        assert {d["_id"]: d["n"] for d in coll.find()} == {"d0": 2, "d1": 1, "d2": 1}


def test_writes_that_meet_another_transaction_s_go_again_whole_and_land_once(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        coll = mongo[settings.database("kernel")]["together_conflict"]
        coll.drop()
        coll.insert_many([{"_id": f"d{i}", "n": 0} for i in range(3)])
        other = mongo.start_session()
        other.start_transaction()
        coll.update_one({"_id": "d1"}, {"$set": {"other": True}}, session=other)
        done: list = []

        def together():
            writes = [UpdateOne({"_id": f"d{i}"}, {"$inc": {"n": 1}}) for i in range(3)]
            done.append(write_together(coll, writes).modified_count)

        writer = threading.Thread(target=together)
        writer.start()
        time.sleep(0.5)  # the writes meet the other transaction's, uncommitted
        assert not done
        assert {d["_id"]: d["n"] for d in coll.find()} == {"d0": 0, "d1": 0, "d2": 0}
        other.commit_transaction()
        other.end_session()
        writer.join(30)
        assert done == [3]
        assert {d["_id"]: d["n"] for d in coll.find()} == {"d0": 1, "d1": 1, "d2": 1}
        assert coll.find_one({"_id": "d1"})["other"] is True
    finally:
        mongo.close()
