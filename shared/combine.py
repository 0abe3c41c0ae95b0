"""The writes of one projection batch, combined before they go to the store (issue 14).

A batch's handlers write document by document: a rebuild of a summary kept per client sends
one update per event, 60 updates for a client with 60 events, and the store applies each one
on its own. Updates of one document by `_id` are folded into one where the result is the
same by construction:

- `$set` of a path set before: the later value (what applying both in turn leaves);
- `$inc` of a path incremented before: the sum;
- `$push` onto an array pushed before: one `$push` with `$each` of the values, in order;
- `$setOnInsert`: the first update's only (after the first upsert the document exists, so a
  later `$setOnInsert` would change nothing); `upsert` must be the same on both;
- anything else (another operator, a path two operators touch, a path inside another, a
  `$push` with modifiers, an update with options) is not folded: it waits its turn.

Writes to different documents commute, so a document's writes are gathered together (each
document's in their order, documents in the order first written). A write that may touch
another document (`update_many`, a filter without `_id`) is a fence: nothing moves across it.
Collections with a unique index other than `_id` keep their writes in order, because moving
one document's write before another's could collide on that index where the order given
does not (only neighbouring writes are folded there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.collection import Collection

OPS = {
    "update_one": UpdateOne,
    "update_many": UpdateMany,
    "insert_one": InsertOne,
    "replace_one": ReplaceOne,
    "delete_one": DeleteOne,
    "delete_many": DeleteMany,
}
FOLDABLE = ("$set", "$inc", "$push", "$setOnInsert")
_NUMBERS = (int, float)
_PARAMS = {
    "update_one": ("filter", "update"),
    "update_many": ("filter", "update"),
    "insert_one": ("document",),
    "replace_one": ("filter", "replacement"),
    "delete_one": ("filter",),
    "delete_many": ("filter",),
}


@dataclass
class Write:
    """One buffered write: the collection, pymongo's method name and its arguments."""

    collection: Collection
    name: str
    params: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, collection: Collection, name: str, args: tuple, kwargs: dict) -> Write:
        names = _PARAMS[name]
        params = dict(zip(names, args, strict=False))
        options = {}
        for key, value in kwargs.items():
            if key in names:
                params[key] = value
            else:
                options[key] = value
        return cls(collection, name, params, options)

    def op(self, namespace: str | None = None) -> Any:
        """pymongo's operation for this write; with `namespace` (db.collection), one for a
        `bulkWrite` across collections (`send`)."""
        extra = {"namespace": namespace} if namespace is not None else {}
        return OPS[self.name](**self.params, **self.options, **extra)

    def document(self) -> tuple[str, Any] | None:
        """(collection, _id) when the write can touch that one document only."""
        if self.name == "insert_one":
            doc = self.params["document"]
            key = doc.get("_id") if isinstance(doc, dict) else None
        elif self.name in ("update_one", "replace_one", "delete_one"):
            key = self.params["filter"].get("_id")
        else:
            return None
        if key is None or isinstance(key, dict):  # no _id, or {"$in": ...} and the like
            return None
        try:
            hash(key)
        except TypeError:
            return None
        return (self.collection.full_name, key)


def _paths(update: dict) -> list[tuple[str, str]]:
    return [(operator, path) for operator, fields in update.items() for path in fields]


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _pushed(value: Any) -> list | None:
    """The values a `$push` appends, or None when it has modifiers other than `$each`."""
    if isinstance(value, dict):
        if len(value) == 1 and "$each" in value:
            return list(value["$each"])
        if any(k.startswith("$") for k in value):
            return None
    return [value]


def _overlapping(paths: list[tuple[str, str]]) -> bool:
    """Whether one update touches a path twice, or a path and a path inside it. Without a
    dotted path only a repeated one can (the pairwise test was a fifth of a rebuild's fold,
    issue 14)."""
    names = [p for _, p in paths]
    if not any("." in p for p in names):
        return len(set(names)) != len(names)
    return any(_related(p, q) for i, p in enumerate(names) for q in names[i + 1 :])


def fold(first: Write, then: Write) -> Write | None:
    """One update doing what `first` then `then` do, or None when that is not certain."""
    tail = _Tail.of(first)
    return tail.write() if tail is not None and tail.take(then) else None


class _Tail:
    """The last of a document's writes in one `combine`, as more updates fold into it: the
    update they make together, this tail's own, changed in place, and what each fold asks
    of it kept at hand (each path's operator, whether a path is dotted). Folded pair by
    pair, the update was built afresh for every write and a `$push`'s values copied each
    time: 6.5 us a write, 60 writes a document in a rebuild, an eighth of its time (issue 14).
    """

    __slots__ = ("first", "update", "op_of", "dotted", "upsert", "owned")

    def __init__(self, first: Write, update: dict[str, dict]):
        self.first = first
        self.update = update  # operator -> {path: value}, this tail's own
        self.op_of = {path: op for op, fields in update.items() for path in fields}
        self.dotted = any("." in path for path in self.op_of)
        self.upsert = bool(first.options.get("upsert"))
        self.owned: set[str] = set()  # the paths whose `$push` holds a list of this tail's

    @classmethod
    def of(cls, first: Write) -> _Tail | None:
        """A tail beginning with `first`, or None when nothing can fold into it."""
        if first.name != "update_one":
            return None
        if first.params["filter"] != {"_id": first.params["filter"].get("_id")}:
            return None  # a condition besides _id: whether a later update matches depends on it
        if set(first.options) - {"upsert"}:
            return None
        update = first.params["update"]
        if not isinstance(update, dict) or any(op not in FOLDABLE for op in update):
            return None  # a pipeline, or an operator it does not fold
        if _overlapping(_paths(update)):
            return None
        return cls(first, {op: dict(fields) for op, fields in update.items()})

    def write(self) -> Write:
        """The one update of the tail (kept only once something folded into it)."""
        first = self.first
        return Write(
            first.collection, "update_one", {**first.params, "update": self.update}, first.options
        )

    def take(self, then: Write) -> bool:
        """Fold `then` in when the result is certain (see the module's text); else False,
        and the tail is as it was."""
        if then.name != "update_one" or then.params["filter"] != self.first.params["filter"]:
            return False
        options = then.options
        if options and (len(options) > 1 or "upsert" not in options):
            return False
        if bool(options.get("upsert")) != self.upsert:
            return False
        b = then.params["update"]
        if not isinstance(b, dict):
            return False  # a pipeline
        # every change decided (and checked) before any is made: (operator, path, value,
        # whether the value is a `$push` list of this tail's own to extend or to keep)
        changes: list[tuple[str, str, Any, bool]] = []
        theirs: set[str] = set()
        for op, fields in b.items():
            if op not in FOLDABLE:
                return False
            if op == "$setOnInsert":
                continue  # changes nothing: the first update's upsert made the document
            for path, value in fields.items():
                if path in theirs:
                    return False  # one path under two operators of `then`
                theirs.add(path)
                held = self.op_of.get(path)
                if held is None:
                    changes.append((op, path, value, False))
                    continue
                if held != op:
                    return False  # one path under two operators
                current = self.update[op][path]
                if op == "$inc":
                    # ints and floats only (exactly: a bool is an int to isinstance, not to $inc)
                    if type(current) not in _NUMBERS or type(value) not in _NUMBERS:
                        return False
                    value = current + value
                elif op == "$push":
                    after = _pushed(value)
                    if after is None:
                        return False
                    if path in self.owned:
                        changes.append((op, path, after, True))
                        continue
                    before = _pushed(current)
                    if before is None:
                        return False
                    value = {"$each": before + after}
                changes.append((op, path, value, op == "$push"))
        if (self.dotted or any("." in path for path in theirs)) and _dotted_clash(
            self.op_of,
            [(op, p) for op, fields in b.items() if op != "$setOnInsert" for p in fields],
        ):
            return False
        update, owned = self.update, self.owned
        for op, path, value, own in changes:
            if own and path in owned:
                update[op][path]["$each"].extend(value)
                continue
            if own:
                owned.add(path)
            into = update.get(op)
            if into is None:
                into = update[op] = {}
            if path not in into:
                self.op_of[path] = op
                self.dotted = self.dotted or "." in path
            into[path] = value
        return True


def _dotted_clash(op_of: dict[str, str], theirs: list[tuple[str, str]]) -> bool:
    """Whether an update's paths, one of them dotted, meet the tail's (`op_of`) other than as
    the same path under the same operator, or meet each other."""
    if any(
        _related(path_a, path_b) and (op_a != op_b or path_a != path_b)
        for path_a, op_a in op_of.items()
        for op_b, path_b in theirs
    ):
        return True
    return _overlapping(theirs)


def _fold_into(out: list, write: Write) -> bool:
    """Fold `write` into the last of `out` (a write, or a tail), which becomes a tail."""
    last = out[-1]
    tail = last if isinstance(last, _Tail) else _Tail.of(last)
    if tail is None or not tail.take(write):
        return False
    out[-1] = tail
    return True


def combine(writes: list[Write], in_order: frozenset[str] = frozenset()) -> list[Write]:
    """`writes` with each document's updates folded and gathered (see the module's text);
    `in_order`: full names of collections whose writes keep their order."""
    out: list[Write | _Tail] = []
    groups: dict[tuple[str, Any], list[Write | _Tail]] = {}

    def fence() -> None:
        for group in groups.values():
            out.extend(group)
        groups.clear()

    for write in writes:
        key = write.document()
        if key is None:
            fence()
            out.append(write)
            continue
        if key[0] in in_order:
            fence()
            if not (out and _document(out[-1]) == key and _fold_into(out, write)):
                out.append(write)
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = [write]
        elif not _fold_into(group, write):
            group.append(write)
    fence()
    return [w.write() if isinstance(w, _Tail) else w for w in out]


def _document(write: Write | _Tail) -> tuple[str, Any] | None:
    return (write.first if isinstance(write, _Tail) else write).document()


# -- a generation its only writer began empty (a rebuild) ---------------------------------------

# documents a Fresh remembers at most; past it, every write goes as given (upserts)
FRESH_LIMIT = 2_000_000
# what a handler may call on a buffered collection without writing
READS = frozenset({"find", "find_one", "count_documents", "estimated_document_count", "distinct"})


def reads(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether a call of collection method `name` only reads (an aggregation reads unless a
    stage writes its results)."""
    if name == "aggregate":
        return not any(set(stage) & {"$out", "$merge"} for stage in _pipeline(args, kwargs))
    return name in READS


def _pipeline(args: tuple, kwargs: dict) -> list:
    """The pipeline of an `aggregate` call."""
    return args[0] if args else kwargs.get("pipeline", [])


# the aggregation stages that read or write a collection besides the one aggregated
_OTHERS = frozenset({"$lookup", "$graphLookup", "$unionWith", "$out", "$merge"})


def reaches_out(args: tuple, kwargs: dict) -> bool:
    """Whether an `aggregate` call's pipeline (at any depth) names another collection."""
    return _names_other(_pipeline(args, kwargs))


def _names_other(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in _OTHERS or _names_other(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_names_other(v) for v in value)
    return False


@lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...] | None:
    """A path's parts, or None for one `_inserted` does not build (`_id`, an array index,
    an operator): a batch sets the same few paths thousands of times."""
    parts = tuple(path.split("."))
    if parts[0] == "_id" or any(not p or p.startswith("$") or p.isdigit() for p in parts):
        return None
    return parts


def _inserted(write: Write) -> dict | None:
    """The document `write` (an upsert or replace by `_id` alone) inserts into a collection
    without it, or None when that is not certain."""
    filter_ = write.params["filter"]
    if set(filter_) != {"_id"} or isinstance(filter_["_id"], dict):
        return None
    if set(write.options) - {"upsert"}:
        return None
    if write.name == "replace_one":
        replacement = write.params["replacement"]
        if not isinstance(replacement, dict) or any(k.startswith("$") for k in replacement):
            return None
        if replacement.get("_id", filter_["_id"]) != filter_["_id"]:
            return None
        return {"_id": filter_["_id"], **{k: v for k, v in replacement.items() if k != "_id"}}
    update = write.params["update"]
    if not isinstance(update, dict) or not update or any(op not in FOLDABLE for op in update):
        return None
    doc: dict = {"_id": filter_["_id"]}
    for op, fields in update.items():
        for path, value in fields.items():
            parts = _parts(path)
            if parts is None:
                return None
            if op == "$inc" and (not isinstance(value, int | float) or isinstance(value, bool)):
                return None
            if op == "$push":
                value = _pushed(value)  # an absent array pushed onto: the values pushed
                if value is None:
                    return None
            into = doc
            for part in parts[:-1]:
                into = into.setdefault(part, {})
                if not isinstance(into, dict):
                    return None
            if parts[-1] in into:
                return None  # two paths of one update meet: the store refuses it, as given
            into[parts[-1]] = value
    return doc


class Fresh:
    """The documents a generation may hold, for the only writer of a generation it began
    empty (a rebuild, shared.consumer): the `_id`s its writes may have made, per collection.

    A write to a document not among them finds no document. The upsert that makes it is
    sent as the insert of the document it makes (`_inserted`), and the store applies a run of
    inserts as one statement where it applies each upsert as a find and a write. A bulk of
    5,000 fresh upserts ran at 0.4 of `insert_many` of the same documents on the local store,
    a bulk of inserts at 1.0 (issue 14, session 11). An update or delete that would find no
    document is not sent at all.

    What may make a document whose `_id` the writer did not give (an insert without `_id`,
    an upsert or `update_many` not by `_id`, a call past the buffer) stops the tracking of
    that collection: its writes go as given from then on. Remembering too much is safe (an
    upsert goes as an upsert); remembering too little is not, so a retried transaction
    keeps what its aborted attempt added."""

    def __init__(self, limit: int = FRESH_LIMIT):
        self.written: dict[str, set] = {}
        self.untracked: set[str] = set()
        self.limit, self.count = limit, 0

    def untrack(self, full_name: str) -> None:
        self.untracked.add(full_name)
        self.count -= len(self.written.pop(full_name, ()))

    def settle(self, write: Write) -> tuple[Write | None, bool]:
        """(what to send for `write`, None for nothing; whether it is its document's first
        write, which may then go before the writes of other documents)."""
        return self._settle(write, write.document())

    def _settle(self, write: Write, key: tuple[str, Any] | None) -> tuple[Write | None, bool]:
        name = write.collection.full_name
        if name in self.untracked:
            return write, False
        if key is None:
            if write.name == "insert_one" or write.options.get("upsert"):
                self.untrack(name)
            return write, False
        ids = self.written.setdefault(name, set())
        if key[1] in ids:
            return write, False
        if write.name == "delete_one" or not (
            write.name == "insert_one" or write.options.get("upsert")
        ):
            return None, False  # no document to update or delete
        if self.count >= self.limit:
            self.untrack(name)
            return write, False
        ids.add(key[1])
        self.count += 1
        if write.name == "insert_one":
            return write, True
        doc = _inserted(write)
        if doc is None:
            return write, False
        return Write(write.collection, "insert_one", {"document": doc}), True

    def settle_all(
        self, writes: list[Write], in_order: frozenset[str] = frozenset()
    ) -> list[Write]:
        """`writes` (combined) as they go to the store: each settled, and between two fences
        the documents' first writes (inserts, mostly) gathered before the others, per
        collection, so that the store gets long runs of one kind. A document's later writes
        stay after its first; collections kept in order are not moved."""
        out: list[Write] = []
        firsts: list[Write] = []
        rest: list[Write] = []

        def cut() -> None:
            for part in (firsts, rest):
                out.extend(sorted(part, key=lambda w: w.collection.full_name))
                part.clear()

        for write in writes:
            key = write.document()
            sent, first = self._settle(write, key)
            if key is None or key[0] in in_order:
                cut()
                if sent is not None:
                    out.append(sent)
            elif sent is not None:
                (firsts if first else rest).append(sent)
        cut()
        return out


# MongoDB 8.0's `bulkWrite` command (wire version 25) takes writes to several collections in
# one round trip; the local store has it too. `together = False` sends them the other way
# (MongoDB 7.0, docker-compose's, has no such command): tests use it to try both.
BULK_WRITE_WIRE_VERSION = 25
together = True
# up to this many writes go as one bulkWrite; more go one bulk per collection. The local
# store applies a bulkWrite's writes one by one, each as a command of its own, where it
# applies an insert of 5,000 documents as one statement: a rebuild's batches sent together
# ran at 0.45 / 0.32 of raw insert_many (10k / 100k events) against 0.55 / 0.52 the other
# way (bench scale, session 13). The round trips saved matter for a small batch only.
TOGETHER_MAX = 100


def can_send_together(mongo: Any) -> bool:
    """Whether every writable server the client knows has the `bulkWrite` command."""
    if not together:
        return False
    servers = [
        s for s in mongo.topology_description.server_descriptions().values() if s.is_writable
    ]
    return bool(servers) and all(s.max_wire_version >= BULK_WRITE_WIRE_VERSION for s in servers)


def send(
    writes: list[Write],
    session: Any,
    checked: frozenset[int] = frozenset(),
    *,
    may_join: bool = True,
) -> dict[int, int]:
    """Send `writes` in `session` (its transaction), each collection's in their order: as
    one `bulkWrite` command where the server has it and they are a few writes to several
    collections (TOGETHER_MAX), else one ordered bulk_write per collection. A
    consumer batch's writes go to several collections (the projection's own, its offsets,
    the positions seen): one command for all of them was half of its round trips to the
    store in the busy hour (issue 14). Returns the matched count of each write
    whose index is in `checked` (a write on a condition; the other way it goes on its own).
    `may_join=False` (a rebuild's batches) always sends them the second way: in CI a
    disposal's rebuild sent together met a duplicate key on an insert (session 13), and a
    rebuild has nothing to gain from it (its batches are thousands of writes)."""
    if not writes:
        return {}
    mongo = session.client
    several = any(
        a.collection.full_name != b.collection.full_name
        for a, b in zip(writes, writes[1:], strict=False)
    )
    if may_join and several and len(writes) <= TOGETHER_MAX and can_send_together(mongo):
        result = mongo.bulk_write(
            [w.op(w.collection.full_name) for w in writes],
            session=session,
            ordered=True,
            verbose_results=bool(checked),
        )
        return {i: result.update_results[i].matched_count for i in checked}
    # one bulk per collection, each collection's writes in their order: writes to different
    # collections do not touch one another, and the transaction holds them all or none. Sent
    # in the order they came, a batch of interleaved events was a bulk per change of
    # collection: a consumer behind with a few hundred writes (measures' board: a booking's
    # session, a request, a completion's response and points, ...) sent dozens of one- or
    # two-write bulks, each a round trip to a store that answered in 40 ms, so it fell
    # further behind (issue 14, session 28). A write whose matched count is asked for goes
    # in a bulk of its own, after its collection's writes before it.
    by_collection: dict[str, list[int]] = {}
    for i, write in enumerate(writes):
        by_collection.setdefault(write.collection.full_name, []).append(i)
    matched: dict[int, int] = {}
    for indexes in by_collection.values():
        run: list[int] = []
        for n, i in enumerate(indexes):
            run.append(i)
            following = indexes[n + 1] if n + 1 < len(indexes) else None
            if following is None or i in checked or following in checked:
                collection = writes[i].collection
                result = collection.bulk_write(
                    [writes[j].op() for j in run], ordered=True, session=session
                )
                if i in checked:
                    matched[i] = result.matched_count
                run = []
    return matched
