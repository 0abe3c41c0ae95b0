"""Read-your-writes: a write tells its caller the position it produced; a read may ask to see
at least that position and waits, bounded, until the projections it reads have reached it.

- A write's response carries `X-Rapport-Position: <service>:<position>`: the event store's
  gap-free position of the last event the request appended (shared.eventstore).
- A request may send `X-Rapport-Min-Position: <service>:<position>[,<service>:<position>...]`
  (the portal sends every position of the person's earlier writes, for all services). Before
  a projection is read (`ProjectionStore.reader`, through `shared.web.context().projection`),
  the request waits until that projection has seen every event of each service it reads up
  to the position asked; services the projection does not read are ignored. The wait is at
  most `MAX_WAIT` seconds for the whole request; past it the request answers anyway and says
  `X-Rapport-Stale: <service>:<position>,...` (what was not reached). Without the header
  nothing is checked (no extra round trip).

"Reached" must hold although a topic has several partitions, so events of one service reach
a consumer out of order: the consumer records, per projection generation and source service,
in the same transaction as the projection writes (`note_seen`, called by
ProjectionStore._apply and _park), the positions it has seen — `through` (every position up
to it seen) and `ahead` (ranges seen beyond a gap). Every event the projection reads counts,
whether a handler used it, ignored it, or parked it as a dead letter, and however many
consumer instances share the partitions. Positions are gap-free and the relay publishes every
one, so `through` only stops at an event still on its way.
"""

from __future__ import annotations

import bisect
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Response, current_app, g, has_request_context, request
from pymongo.client_session import ClientSession
from pymongo.errors import PyMongoError

from .combine import Write
from .mongo import delete_in_pieces

if TYPE_CHECKING:  # imported for types only: projections imports this module
    from .events import Event
    from .projections import ProjectionStore, Record

POSITION_HEADER = "X-Rapport-Position"
MIN_POSITION_HEADER = "X-Rapport-Min-Position"
STALE_HEADER = "X-Rapport-Stale"
MAX_WAIT = 2.0  # seconds a request waits, in all, for its projections
PROGRESS = "projection_progress"
_ENTRY = re.compile(r"([a-z][a-z0-9_-]{0,39}):([0-9]{1,15})")
MAX_ENTRIES = 16


class BadConsistencyHeader(ValueError):
    """X-Rapport-Min-Position is not a list of service:position."""


# -- the consumer side: which positions a projection has seen ------------------------------
def source_of(topic: str) -> str:
    """`<prefix><service>` -> service (service names hold no dot)."""
    return topic.rsplit(".", 1)[-1]


def _position(raw: bytes) -> int | None:
    try:
        value = json.loads(raw).get("position")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Seen:
    """What a projection generation had seen of one source before a batch: every position up
    to `through`, the ranges `ahead`, and from which position on that record is exact
    (`exact_from`): below it, when the generation began mid-topic (an upgrade, a topic whose
    first records are gone), it only says what need not be waited for."""

    through: int = 0
    ahead: tuple = ()
    exact_from: int = 1

    def holds(self, position: int) -> bool | None:
        """True: seen (applied, ignored or parked) by this generation; False: not seen;
        None: not known from positions (below `exact_from`)."""
        if position < self.exact_from:
            return None
        if position <= self.through:
            return True
        # the ranges are sorted and apart (`merge`): the last one starting at or before the
        # position is the only one that can hold it. A rebuild reading one partition far
        # ahead of the others keeps thousands of ranges, and looking through all of them for
        # every event was 44 % of a 1M-event rebuild's time (py-spy, bench scale, session 9)
        i = bisect.bisect_right(self.ahead, position, key=_first)
        return i > 0 and position <= self.ahead[i - 1][1]


def _first(r: Sequence[int]) -> int:
    return r[0]


@dataclass
class Noted:
    """What `note_seen` found and wrote: `before` ({source: Seen, or None when nothing of it
    is known}) for the batch's duplicate check, `written` for `remember` after the commit;
    `missing`: a position document it read was not there (a generation's first batch, or
    one dropped under a consumer that had not followed the swap: ProjectionStore._apply)."""

    before: dict[str, Seen | None] = field(default_factory=dict)
    missing: bool = False
    written: list[tuple[tuple[str, str], Seen]] = field(default_factory=list)
    # with `defer`: the writes of the positions, for the caller to send with the batch's
    # others, each with the (database, document id) whose condition it carries (or None)
    writes: list[tuple[Write, tuple[str, str] | None]] = field(default_factory=list)


class PositionsMoved(PyMongoError):
    """A deferred write of the positions seen found its document moved on under the batch
    (another instance, a dropped generation): what this process knew is forgotten and the
    transaction is run again from the start, reading the document (`with_transaction` runs
    again a callback that raises an error labelled TransientTransactionError)."""

    def __init__(self, doc_key: tuple[str, str]):
        _known.pop(doc_key, None)
        super().__init__(
            f"positions {doc_key[1]} moved on under this batch",
            error_labels=["TransientTransactionError"],
        )


# {(database, progress document id): Seen} as this process last committed it. The next batch
# writes on the condition that the document still holds that instead of reading it first: one
# round trip less per batch, in every consumer (issue 14). Another writer (a second instance,
# a dropped generation) makes the condition fail, and the document is then read as before,
# so the cache is never trusted beyond what the store confirms.
_known: dict[tuple[str, str], Seen] = {}


def _seen_of(doc: dict) -> Seen:
    through = doc.get("through", 0)
    ahead = tuple(tuple(r) for r in doc.get("ahead", []))
    # a document written before `exact_from` existed: exact from there on (the ids of the
    # events applied before were kept, projection_processed)
    return Seen(through, ahead, doc.get("exact_from", through + 1))


def _fields(seen: Seen) -> dict:
    return {
        "through": seen.through,
        "ahead": [list(r) for r in seen.ahead],
        "exact_from": seen.exact_from,
    }


def note_seen(
    store: ProjectionStore,
    key: str,
    session: ClientSession,
    records: Sequence[Record],
    events: Sequence[Event] = (),
    *,
    write: bool = True,
    defer: bool = False,
    ready: Callable[[], None] = lambda: None,
) -> Noted:
    """Record, in the apply transaction and before its handlers run, the positions of
    `records` (one batch of a projection generation `key`), and return what was seen before
    them. `events` are the records parsed, in order; when some records could not be parsed
    their positions are read from the raw records instead. `write=False` (a rebuild, the
    generation's only writer): once known, the positions are kept in this process only,
    and `write_known` writes them when the rebuild has read everything. `defer`: the writes
    are not sent but returned (`Noted.writes`) for the caller to send with the batch's
    others, in the same transaction, and to raise PositionsMoved when the one on a condition
    matched nothing. `ready` is waited for before the store is read (`View`)."""
    if len(events) == len(records):
        pairs = [(r, e.position) for r, e in zip(records, events, strict=True)]
    else:
        pairs = [(r, _position(r.value)) for r in records]
    by_source: dict[str, list[int]] = {}
    from_start: set[str] = set()
    for record, position in pairs:
        source = source_of(record.topic)
        if position is not None:
            by_source.setdefault(source, []).append(position)
        if record.offset == 0:
            from_start.add(source)
    noted = Noted()
    if not by_source:
        return noted
    progress, database = store.db[PROGRESS], store.db.name
    ids = {f"{key}:{source}": source for source in by_source}
    unknown = [doc_id for doc_id in ids if (database, doc_id) not in _known]
    if unknown:
        ready()
    found = (
        {d["_id"]: d for d in progress.find({"_id": {"$in": unknown}}, session=session)}
        if unknown
        else {}
    )
    for doc_id, source in ids.items():
        positions = by_source[source]
        known = _known.get((database, doc_id))
        if known is not None and not write:
            noted.before[source] = known
            noted.written.append(((database, doc_id), _merged(known, positions)))
            continue
        if (
            known is not None
            and doc_id not in found
            and (after := _merged(known, positions)) != known
        ):
            if defer:  # on the condition that it still holds what this process knows
                noted.before[source] = known
                noted.written.append(((database, doc_id), after))
                cas = {
                    "filter": {"_id": doc_id, **_fields(known)},
                    "update": {"$set": _fields(after)},
                }
                noted.writes.append((Write(progress, "update_one", cas), (database, doc_id)))
                continue
            written = progress.update_one(
                {"_id": doc_id, **_fields(known)}, {"$set": _fields(after)}, session=session
            )
            if written.matched_count:
                noted.before[source] = known
                noted.written.append(((database, doc_id), after))
                continue
        if known is not None and doc_id not in found:
            # moved on under us, or a batch all seen before (which the document must confirm)
            found[doc_id] = progress.find_one({"_id": doc_id}, session=session)
        doc = found.get(doc_id)
        if doc is None:
            noted.missing = True
            if source in from_start:
                before = Seen()
            else:
                # a consumer that was reading this topic before positions were recorded (an
                # upgrade), or a topic whose first records are gone: what it applied before
                # is not known, and waiting for it could last for ever; so the positions
                # before this batch's last one count as seen for reads (optimistic for this
                # one batch, exact after it); duplicates below it are found by event id
                top = max(positions)
                before = Seen(top, (), top + 1)
            noted.before[source] = None if source not in from_start else before
        else:
            before = _seen_of(doc)
            noted.before[source] = before
        after = _merged(before, positions)
        if (doc is not None and after == before and "exact_from" in doc) or not write:
            noted.written.append(((database, doc_id), after))
            continue  # all delivered again: nothing new; or kept in this process (a rebuild)
        if defer:
            whole = {"filter": {"_id": doc_id}, "update": {"$set": _fields(after)}}
            noted.writes.append((Write(progress, "update_one", whole, {"upsert": True}), None))
        else:
            progress.update_one(
                {"_id": doc_id}, {"$set": _fields(after)}, upsert=True, session=session
            )
        noted.written.append(((database, doc_id), after))
    return noted


def _merged(seen: Seen, positions: Iterable[int]) -> Seen:
    through, ahead = merge(seen.through, seen.ahead, positions)
    return Seen(through, tuple(ahead), seen.exact_from)


def remember(noted: Noted) -> None:
    """After the transaction that wrote them committed: the progress documents' values."""
    for doc_key, value in noted.written:
        _known[doc_key] = value


def merge(
    through: int, ahead: Sequence[Sequence[int]], positions: Iterable[int]
) -> tuple[int, list[tuple[int, int]]]:
    """Add `positions` to (`through`, `ahead` as sorted, apart (first, last) ranges) and
    move `through` over every range that now joins it. Ranges keep a long gap (an event
    still on its way on a slow partition) to a few numbers. Each new position is placed by
    a search among the ranges: a rebuild keeps thousands of them while one partition runs
    ahead, and sorting them all again for every batch was an eighth of a 1M-event rebuild's
    time (py-spy, bench scale, session 9)."""
    ranges = [(r[0], r[1]) for r in ahead]
    for p in sorted(set(positions)):
        if p <= through:
            continue
        i = bisect.bisect_right(ranges, p, key=_first)  # ranges[:i] start at or before p
        if i and p <= ranges[i - 1][1]:
            continue  # seen again
        joins_left = i > 0 and ranges[i - 1][1] == p - 1
        joins_right = i < len(ranges) and ranges[i][0] == p + 1
        if joins_left and joins_right:
            ranges[i - 1] = (ranges[i - 1][0], ranges[i][1])
            del ranges[i]
        elif joins_left:
            ranges[i - 1] = (ranges[i - 1][0], p)
        elif joins_right:
            ranges[i] = (p, ranges[i][1])
        else:
            ranges.insert(i, (p, p))
    joined = 0
    while joined < len(ranges) and ranges[joined][0] <= through + 1:
        through = max(through, ranges[joined][1])
        joined += 1
    return through, ranges[joined:]


def write_known(store: ProjectionStore, key: str) -> int:
    """Write the positions this process knows of projection generation `key` (kept by
    `note_seen(write=False)`). Returns the documents written."""
    database = store.db.name
    mine = [
        (doc_id, seen)
        for (db, doc_id), seen in _known.items()
        if db == database and doc_id.startswith(f"{key}:")
    ]
    for doc_id, seen in mine:
        store.db[PROGRESS].update_one({"_id": doc_id}, {"$set": _fields(seen)}, upsert=True)
    return len(mine)


def drop_progress(store: ProjectionStore, key: str) -> None:
    delete_in_pieces(store.db[PROGRESS], {"_id": {"$regex": f"^{re.escape(key)}:"}})
    for known in [k for k in _known if k[0] == store.db.name and k[1].startswith(f"{key}:")]:
        _known.pop(known, None)


# {(database, projection generation key, source): a `through` seen}: it only grows within a
# generation, so a position once reached needs no further query (a rebuild reads under a new
# generation key)
_reached: dict[tuple[str, str, str], int] = {}


def unreached(store: ProjectionStore, generation: int, wanted: dict[str, int]) -> dict[str, int]:
    """Of `wanted` ({service: position}), what this projection generation has not seen yet
    (services it does not read are left out)."""
    key = f"{store.name}:g{generation}"
    database = store.db.name
    asked = {
        s: p
        for s, p in wanted.items()
        if s in store.projection.sources and _reached.get((database, key, s), 0) < p
    }
    if not asked:
        return {}
    for doc in store.db[PROGRESS].find(
        {"_id": {"$in": [f"{key}:{s}" for s in asked]}}, {"through": 1}
    ):
        source = doc["_id"].rsplit(":", 1)[-1]
        cached = (database, key, source)
        _reached[cached] = max(doc.get("through", 0), _reached.get(cached, 0))
    return {s: p for s, p in asked.items() if _reached.get((database, key, s), 0) < p}


# -- the request side -----------------------------------------------------------------------
def parse_min_positions(header: str) -> dict[str, int]:
    """`records:12,scheduling:40` -> {"records": 12, "scheduling": 40} (the highest of a
    service named twice)."""
    wanted: dict[str, int] = {}
    parts = [p.strip() for p in header.split(",") if p.strip()]
    if len(parts) > MAX_ENTRIES:
        raise BadConsistencyHeader(f"{MIN_POSITION_HEADER}: at most {MAX_ENTRIES} entries")
    for part in parts:
        match = _ENTRY.fullmatch(part)
        if not match:
            raise BadConsistencyHeader(
                f"{MIN_POSITION_HEADER}: {part[:60]!r} is not <service>:<position>"
            )
        service, position = match.group(1), int(match.group(2))
        wanted[service] = max(position, wanted.get(service, 0))
    return wanted


def start_request() -> None:
    """Read the header once per request (before_request)."""
    header = request.headers.get(MIN_POSITION_HEADER, "")
    g.rapport_min_positions = parse_min_positions(header) if header.strip() else {}


def pinned_generation(store: ProjectionStore) -> int:
    """The projection's active generation: within a request, as first read in it."""
    if not has_request_context():
        return store.active_generation()
    pinned = g.setdefault("rapport_generations", {})
    key = (store.db.name, store.name)
    if key not in pinned:
        pinned[key] = store.active_generation()
    return pinned[key]


def wait_for(store: ProjectionStore, generation: int) -> None:
    """Before a projection is read: wait, within the request's budget, until it has seen
    the positions the request asked for. Once per projection per request."""
    if not has_request_context():
        return
    wanted = g.get("rapport_min_positions")
    if not wanted:
        return
    checked = g.setdefault("rapport_checked", set())
    if store.name in checked:
        return
    checked.add(store.name)
    if "rapport_wait_until" not in g:
        g.rapport_wait_until = time.monotonic() + MAX_WAIT
    pause = 0.01
    while True:
        missing = unreached(store, generation, wanted)
        if not missing:
            return
        left = g.rapport_wait_until - time.monotonic()
        if left <= 0:
            stale = g.setdefault("rapport_stale", {})
            for service, position in missing.items():
                stale[service] = max(position, stale.get(service, 0))
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.1)


def note_appended(events: Sequence[Event]) -> None:
    """After a request appended events: remember the last position for the response."""
    if not has_request_context() or not events:
        return
    last = max(e.position or 0 for e in events)
    g.rapport_position = max(last, g.get("rapport_position", 0))


def finish(response: Response) -> Response:
    """after_request: the position a write produced, and what a read could not wait for."""
    position = g.get("rapport_position")
    if position:
        response.headers[POSITION_HEADER] = f"{current_app.config['RAPPORT_SERVICE']}:{position}"
    stale = g.get("rapport_stale")
    if stale:
        response.headers[STALE_HEADER] = ",".join(f"{s}:{p}" for s, p in sorted(stale.items()))
    return response
