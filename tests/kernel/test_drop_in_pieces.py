"""`shared.mongo.drop_in_pieces`, how a projection's retired generation goes
(`ProjectionStore.drop_generation`), and `delete_in_pieces`, every delete of several
documents outside a transaction, against the real local store: every document and index
entry goes, a piece of documents per transaction, the ids read once; a document written
after they were read goes with the drop; a generation dropped this way leaves nothing a new
one with the same name could meet (its unique index claims included); a delete in pieces
takes what its query matches and nothing else. How long other writers wait while a drop
runs is the bench's `drop` section."""

from __future__ import annotations

import pymongo
import pytest

from shared.mongo import delete_in_pieces, drop_in_pieces
from testkit.kernel import heard_client


@pytest.fixture
def kernel_db(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    yield mongo[settings.database("kernel")]
    mongo.close()


def _fill(coll, n: int):
    coll.create_index("k", unique=True)
    coll.create_index([("client_id", 1), ("k", -1)])
    coll.insert_many([{"_id": f"d{i}", "k": i, "client_id": f"c{i % 7}"} for i in range(n)])
    return coll


def _filled(db, name: str, n: int):
    db[name].drop()
    return _fill(db[name], n)


def test_every_document_goes_a_piece_per_transaction_and_then_the_collection(settings):
    with heard_client(settings.mongo_uri) as (mongo, heard):
        db = mongo[settings.database("kernel")]
        coll = _filled(db, "drop_in_pieces", 1050)
        heard.commands.clear()
        heard.names.clear()

        assert drop_in_pieces(coll, piece=200) == 1050

        assert "drop_in_pieces" not in db.list_collection_names()
        deletes = [c for c in heard.commands if "delete" in c]
        assert len(deletes) == 6  # 200 x 5 and 50
        assert all(c.get("autocommit") is False and "txnNumber" in c for c in deletes)
        sizes = sorted(len(c["deletes"][0]["q"]["_id"]["$in"]) for c in deletes)
        assert sizes == [50, 200, 200, 200, 200, 200]
        assert heard.names.count("commitTransaction") == 6
        assert heard.names.count("find") == 1  # the ids, read once
        assert heard.names.count("drop") == 1


def test_a_document_written_after_the_ids_were_read_goes_with_the_drop(settings, kernel_db):
    _filled(kernel_db, "drop_in_pieces_late", 30)

    class Late(pymongo.monitoring.CommandListener):
        """Writes one more document (from another client) as soon as the ids have been read."""

        done = False

        def started(self, event):
            pass

        def succeeded(self, event):
            if event.command_name == "find" and not self.done:
                self.done = True
                kernel_db["drop_in_pieces_late"].insert_one({"_id": "late", "k": 999})

        def failed(self, event):
            pass

    late = Late()
    heard = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[late])
    try:
        assert drop_in_pieces(heard[kernel_db.name]["drop_in_pieces_late"]) == 30
    finally:
        heard.close()
    assert late.done
    assert "drop_in_pieces_late" not in kernel_db.list_collection_names()


def test_a_collection_of_the_same_name_meets_nothing_of_the_dropped_one(kernel_db):
    assert drop_in_pieces(_filled(kernel_db, "drop_in_pieces_again", 450), piece=100) == 450

    # the same ids and the same unique keys: no claim of the old is left
    again = _fill(kernel_db["drop_in_pieces_again"], 450)
    assert again.count_documents({}) == 450
    assert again.count_documents({"client_id": "c3"}) == len(range(3, 450, 7))
    assert drop_in_pieces(kernel_db["drop_in_pieces_never_made"]) == 0


def test_a_delete_in_pieces_takes_what_its_query_matches_a_piece_per_transaction(settings):
    with heard_client(settings.mongo_uri) as (mongo, heard):
        coll = _filled(mongo[settings.database("kernel")], "delete_in_pieces", 450)
        heard.commands.clear()
        heard.names.clear()

        assert delete_in_pieces(coll, {"client_id": "c3"}, piece=20) == 64  # 3, 10, ..., 444

        assert heard.names.count("commitTransaction") == 4  # 20, 20, 20 and 4
        assert coll.count_documents({"client_id": "c3"}) == 0
        assert coll.count_documents({}) == 450 - 64
        assert delete_in_pieces(coll, {"client_id": "c3"}) == 0
