"""What the messages of one dispatcher batch read before they go, read together.

A message on its way reads the planner's directory (the client, the appointment it is
about, the therapist) and the client's preferences in the book (addresses.py, delivery.py):
three reads each, made by the batch's senders one message at a time. In the busy hour a
batch is eight confirmations, so twenty-four reads, where one read per collection for the
whole batch finds the same documents (issue 14: the notifications process sent the most
commands to the store, and its confirmations lagged the bookings by seconds).

The documents are read just before the messages are claimed instead of just after, from the
generation pinned for the batch: "looked up at send time" still holds to within the batch.
A read this batch did not fetch (an enquirer, a funder, a course's sessions) goes to the
store as before."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.collection import Collection

from shared.projections import Pinned

from ..application.book import MessageBook
from ..domain import session_bound
from ..domain.plans import ENQUIRER, FUNDER
from ..domain.rules import CLIENT, LEAD


class Fetched:
    """A collection's reader whose `find_one({"_id": x})` answers from the batch's read when
    x was fetched (None for an x fetched and not found); any other call goes to the store."""

    def __init__(self, collection: Collection, found: dict[Any, dict | None]):
        self._collection, self._found = collection, found

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> dict | None:
        if (
            not args
            and not kwargs
            and isinstance(filter, dict)
            and set(filter) == {"_id"}
            and _hashable(filter["_id"])
            and filter["_id"] in self._found
        ):
            return self._found[filter["_id"]]
        return self._collection.find_one(filter, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


class Lookups:
    """The planner's directory (a `Pinned` generation) and the book's preferences for a batch
    of messages, with what those messages will read fetched in one query per collection."""

    def __init__(self, directory: Pinned, book: MessageBook, messages: Iterable[dict]):
        self.directory, self.book = directory, book
        wanted: dict[str, set] = {"clients": set(), "sessions": set(), "therapists": set()}
        told: set = set()  # the clients a message goes to: their preferences are read too
        for m in messages:
            client_id, recipient, kind = m.get("client_id"), m.get("recipient"), m.get("kind")
            if recipient == CLIENT:
                wanted["clients"].add(client_id)
                told.add(client_id)
            if kind == "risk_alert":  # its staff e-mail names the client
                wanted["clients"].add(client_id)
            if m.get("session_id") and kind and session_bound(kind):
                wanted["sessions"].add(m["session_id"])
            if recipient not in (CLIENT, ENQUIRER, LEAD, FUNDER) and m.get("channel") != "inbox":
                wanted["therapists"].add(recipient)
        self._found = {
            logical: self._fetch(directory.reader(logical), ids)
            for logical, ids in wanted.items()
            if ids - {None}
        }
        told.discard(None)
        self._preferences = self._fetch(book.preferences, told) if told else {}

    @staticmethod
    def _fetch(collection: Collection, ids: set) -> dict[Any, dict | None]:
        ids = {i for i in ids if i is not None and _hashable(i)}
        found: dict[Any, dict | None] = dict.fromkeys(ids)
        for doc in collection.find({"_id": {"$in": list(ids)}}):
            found[doc["_id"]] = doc
        return found

    def reader(self, logical: str) -> Collection | Fetched:
        """The planner's collection as `Pinned.reader` gives it, answering from the batch's
        read where it can."""
        found = self._found.get(logical)
        collection = self.directory.reader(logical)
        return Fetched(collection, found) if found is not None else collection

    def preferences_of(self, client_id: str) -> dict | None:
        if client_id in self._preferences:
            return self._preferences[client_id]
        return self.book.preferences_of(client_id)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
