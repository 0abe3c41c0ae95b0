"""The planner: one projection reading scheduling, records, measures and billing, keeping what it
needs to know (the client directory, therapists, sessions) and writing into the message
book what to send and when. Extends the kernel's client directory so that a change of
contact consent and the re-planning it causes happen in one transaction.

Every kind an event plans is read from the kinds registry (domain/kinds.py); the session
handlers here plan the appointment notices and reminders, which also void or move what an
earlier fact planned. Like every projection it depends on the events only: "now" is the
event's own time, never the clock, so a rebuild plans what the live projection planned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, IndexModel, UpdateOne

from shared.crypto import DISPOSED, KeyDisposed
from shared.directory import ClientDirectory

from ..application.book import INDEXES as BOOK_INDEXES
from ..application.book import MessageBook
from ..application.config import NotifyConfig
from ..domain import Facts, planned_on, plans, waits_for_client
from ..domain.plans import VIDEO_LINK
from .alerts import RiskAlerts

# the notices that announce an appointment's time: a move voids the ones still pending
SESSION_NOTICES = ("confirmation", "rescheduled")
# the memo key under which a batch's bookings wait to be planned together (`_gather`)
BOOKINGS = ("planner", "bookings")
OVER = ("planner", "sessions over")  # attended or missed, gathered with the bookings
OVER_TYPES = {"SessionAttended": "attended", "SessionMissed": "missed"}
# facts the planner has no handler of its own for, only kinds the registry plans on them (a
# questionnaire's link), gathered with the bookings too (`_gather_kinds`)
KINDS_ONLY = ("planner", "kinds only")
# the facts the client directory writes a client on (shared.directory)
CLIENT_WRITES = frozenset(n[3:] for n in vars(ClientDirectory) if n.startswith("on_"))


class Planner(ClientDirectory):
    name = "planner"
    sources = ("records", "scheduling", "measures", "billing")
    collections = {
        **ClientDirectory.collections,
        "therapists": [],
        "sessions": [
            IndexModel([("client_id", ASCENDING), ("status", ASCENDING), ("starts_at", ASCENDING)])
        ],
        "awaiting": [IndexModel([("client_id", ASCENDING), ("recorded_at", ASCENDING)])],
        "enquirers": [],
        "funders": [],  # billing's FundingSet: who pays for a client, and their e-mail
    }
    outside = BOOK_INDEXES  # it plans into the message book the dispatchers send from
    # confirmations, reminders and links go within seconds, not milliseconds (risk alerts
    # have a projection of their own): under load, a batch per half second, not one per few
    # events, which queued the urgent lane's claims at notifications' store (Projection)
    linger = 0.5
    # facts about a client that can arrive before the client does: the planner reads three
    # topics, and a batch may hold a booking before the registration it depends on. These
    # are the handlers' own; an event a client-bound kind is planned on waits too (kinds.py)
    AWAIT_CLIENT = (
        "SessionBooked",
        "SessionRescheduled",
        "SessionCancelled",
        "TaskCompleted",
        "QuestionnaireWithdrawn",
    )

    def __init__(self, config: NotifyConfig | None = None):
        super().__init__("notifications")
        self._config = config

    def config_in(self, view) -> NotifyConfig:
        """The config given, else read from the environment once a batch (tests change it
        between batches); read for every plan and every contact, it was a twentieth of
        notifications' consumer process (issue 14)."""
        return self._config or view.recall(("config",), NotifyConfig.from_env)

    def default_quiet_in(self, view):
        """The practice's quiet hours, parsed once a batch."""
        return view.recall(("default_quiet",), lambda: self.config_in(view).default_quiet)

    def prepare(self, events, view) -> None:
        """The clients the batch's events are about, and their preferences, in one read
        each (`_client`, `contact` then find them in `view.memo`). Read one client at a
        time, they were two round trips per client of a batch: 26 of the planner's 36 store
        commands per batch in the bench's flows, its batch 611 ms (p50; issue 14, session
        34). A client not found is remembered as such (a fact that waits for its client)."""
        ids = list(
            dict.fromkeys(
                client_id
                for event in events
                if event.type not in RiskAlerts.HANDLES
                and isinstance(client_id := event.data.get("client_id"), str)
            )
        )
        if not ids:
            return
        clients = {d["_id"]: d for d in view["clients"].find({"_id": {"$in": ids}})}
        preferences = self.book(view).preferences_of_all(ids)
        for client_id in ids:
            view.memo[("client", client_id)] = clients.get(client_id)
            view.memo[("preferences", client_id)] = preferences.get(client_id)

    def handle(self, event, view) -> None:
        if event.type in RiskAlerts.HANDLES:  # planned by their own consumer (alerts.py)
            return
        if event.type == "SessionBooked":
            self._gather(event, view)
            return
        if event.type in OVER_TYPES:
            self._gather_over(event, view)
            return
        if self._kinds_only(event.type):
            self._gather_kinds(event, view)
            return
        self._plan_bookings(view)  # the bookings before this event first, in their order
        if event.type in CLIENT_WRITES:  # the clients remembered may change: read them again
            view.memo.clear()
        if self._held(event, view):
            return
        self._apply(event, view)
        if event.type in CLIENT_WRITES:
            view.memo.clear()

    def _held(self, event, view) -> bool:
        """Kept for later when it is about a client the directory does not know yet."""
        waits = event.type in self.AWAIT_CLIENT or waits_for_client(event.type)
        if waits and self._client_unknown(event, view):
            if event.type == "SessionBooked":  # perhaps booked by link before registering
                self._for_enquirer(view, event.data["client_id"], "bookings", event)
            return True
        return False

    # -- bookings, planned together ------------------------------------------------------
    def _gather(self, event, view) -> None:
        """A booking waits with the bookings that follow it in the batch, to be planned
        with them once another kind of event comes or the batch ends (`_plan_bookings`).
        In the busy hour the planner fell seconds behind the bookings, three round trips
        each (the session's write, the read of its messages, their write): the
        confirmations went 2-4 s after the booking, most of it before they were planned
        (issue 14, `make bench` flows, the confirmation's hops). Together they are three
        round trips for the batch."""
        sid = event.data["session_id"]
        if sid in view.memo.get(BOOKINGS, {}) or sid in view.memo.get(OVER, {}):
            self._plan_bookings(view)  # booked again in the batch, or after it was over
        self._gathering(view)[BOOKINGS][sid] = event

    def _gather_over(self, event, view) -> None:
        """An attendance or a missed session waits with the bookings too, and goes with the
        others of the batch after them (`_sessions_over`): one at a time, each was two
        writes of its own and cut the batch's bookings in two, and in the busy hour the
        planner fell behind (issue 14: the flows offered 50 ticks a second, a third of its
        time on them). A session's booking in the batch still comes before its end."""
        sid = event.data["session_id"]
        if sid in view.memo.get(OVER, {}):
            self._plan_bookings(view)
        self._gathering(view)[OVER][sid] = event

    def _kinds_only(self, event_type: str) -> bool:
        return bool(planned_on(event_type)) and not hasattr(self, f"on_{event_type}")

    def _gather_kinds(self, event, view) -> None:
        """A fact the planner only plans kinds on (a questionnaire requested: its link) waits
        with the bookings, and the kinds of all of them are planned in one read and one write
        of the book (`_plan_kinds_all`). One at a time, each was a read and a write of its
        own, and each cut the batch's bookings in two: measures requests a questionnaire for
        every booking, so in the busy hour the planner planned most bookings alone, three
        round trips each (issue 14: py-spy of notifications' consumer under the flows, its
        planner in a step 72 % of the time, most of it planning these one by one)."""
        self._gathering(view)[KINDS_ONLY].append(event)

    def _gathering(self, view) -> dict:
        """The batch's gathered bookings, ends of sessions and facts planned on by kinds
        alone, planned at the batch's end (or before the next event of another kind)."""
        if not any(view.memo.get(key) for key in (BOOKINGS, OVER, KINDS_ONLY)):
            view.once(BOOKINGS, lambda: self._plan_bookings(view))
        view.memo.setdefault(BOOKINGS, {})
        view.memo.setdefault(OVER, {})
        view.memo.setdefault(KINDS_ONLY, [])
        return view.memo

    def _plan_bookings(self, view) -> None:
        gathered = list((view.memo.pop(BOOKINGS, None) or {}).values())
        over = list((view.memo.pop(OVER, None) or {}).values())
        kinds_only = view.memo.pop(KINDS_ONLY, None) or []
        self._plan_booked(view, gathered)
        ready = [event for event in over if not self._held(event, view)]
        if len(ready) == 1:  # alone, as any event
            self._apply(ready[0], view)
        elif ready:
            self._sessions_over(view, ready)
            self._plan_kinds_all(ready, view)
        self._plan_kinds_all([e for e in kinds_only if not self._held(e, view)], view)

    def _plan_booked(self, view, gathered: list) -> None:
        ready = [event for event in gathered if not self._held(event, view)]
        if len(ready) == 1:  # alone, as any event (one write fewer than together)
            self._apply(ready[0], view)
        elif ready:
            sessions = self._save_sessions(ready, view)
            plans = [
                self._booking_plan(view, event, session)
                for event, session in zip(ready, sessions, strict=True)
            ]
            self._write_plans(view, plans)
            self._plan_kinds_all(ready, view)

    def _apply(self, event, view) -> None:
        """The event's handler, then every kind the registry plans on this event type."""
        super().handle(event, view)
        self._plan_kinds(event, view)

    def _plan_kinds(self, event, view) -> None:
        self._plan_kinds_all([event], view)

    def _plan_kinds_all(self, events: list, view) -> None:
        """Every kind the registry plans on each of `events`, in their order, in one read and
        one write of the book (`MessageBook.plan_all`: a key planned twice is the later's)."""
        plans = []
        for event in events:
            kinds = planned_on(event.type)
            if not kinds:
                continue
            client_id = event.data.get("client_id")
            client = self._client(view, client_id) if client_id else None
            facts = Facts(
                dict(event.data),
                self.contact(view, client_id),
                (client or {}).get("therapist_id"),
                self.config_in(view).tz,
                event.recorded_at,
            )
            plans += [(kind.planned_on[event.type](facts), event.recorded_at) for kind in kinds]
        if plans:
            self.book(view).plan_all(plans)

    def _client_unknown(self, event, view) -> bool:
        """Keep a fact about a client the directory does not know yet; it is applied, in
        order, when the registration arrives (`on_ClientRegistered`)."""
        client_id = event.data["client_id"]
        if self._client(view, client_id) is not None:
            return False
        view["awaiting"].update_one(
            {"_id": event.event_id},
            {
                "$setOnInsert": {
                    "client_id": client_id,
                    "type": event.type,
                    "data": _sealed_data(event, view),
                    "recorded_at": event.recorded_at,
                    "stream_version": event.stream_version,
                }
            },
            upsert=True,
        )
        return True

    def _apply_awaiting(self, view, client_id: str) -> None:
        waiting = list(
            view["awaiting"]
            .find({"client_id": client_id})
            .sort([("recorded_at", ASCENDING), ("stream_version", ASCENDING)])
        )
        for doc in waiting:
            self._apply(_Later(doc["_id"], doc["type"], doc["data"], doc["recorded_at"]), view)
        view["awaiting"].delete_many({"client_id": client_id})

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def book(view) -> MessageBook:
        return MessageBook(view["sessions"].database, view.session)

    def contact(self, view, client_id: str) -> plans.Contact:
        client = self._client(view, client_id)
        # preferences are set by the service's commands, never by the planner
        prefs = view.recall(
            ("preferences", client_id), lambda: self.book(view).preferences_of(client_id)
        )
        return plans.contact_for(client, prefs, self.default_quiet_in(view))

    @staticmethod
    def _client(view, client_id: str) -> dict | None:
        """The client's directory entry, read once per batch until a fact about clients is
        applied (`handle`): a course books sixteen sessions for one client, and each booking
        read the client two or three times (issue 14)."""
        return view.recall(
            ("client", client_id), lambda: view["clients"].find_one({"_id": client_id})
        )

    def _tell_client(self, view, kind: str, key: str, session: dict, at: datetime) -> None:
        """Plan a notice about the session to the client, by the channels they allow now."""
        self._plan_session(view, session, at, notice=(kind, key))

    def _reconcile_reminders(self, view, session: dict, as_of: datetime, reason: str) -> None:
        self._plan_session(view, session, as_of, reminders=reason)

    def _plan_session(
        self,
        view,
        session: dict,
        at: datetime,
        *,
        notice: tuple[str, str] | None = None,
        reminders: str | None = None,
        unless_told_by_link: bool = False,
    ) -> None:
        """A notice about the session (kind, key) and/or its reminders as the client's
        contact wants them now, any other pending reminder voided for `reminders` (the
        reason). One read of the contact and one plan for both: a booking read the client
        and their preferences twice and planned twice (issue 14). `unless_told_by_link`:
        no notice when the person was sent the confirmation as they booked by link, before
        they were registered (registering them does not confirm it twice); that is known
        from the plan's own read of the book (`_link_keys`)."""
        plan = _SessionPlan.of(
            self, view, session, at, notice, reminders, unless_told_by_link=unless_told_by_link
        )
        self._write_plans(view, [plan])

    def _write_plans(self, view, plans: list[_SessionPlan]) -> None:
        """What `_SessionPlan`s plan, with one read of the book for all and one write."""
        book = self.book(view)
        known = book.known([key for plan in plans for key in plan.keys()])
        writes = []
        for plan in plans:
            planned = plan.planned
            if any(known.get(k, {}).get("kind") == "booked_by_link" for k in plan.links):
                planned = []
            if plan.reminders is not None and not plan.session.get("new"):
                # (a session this generation never saw has no reminder pending to void: a
                # rebuild finds the live book's, planned on the same keys or voided by the
                # later facts that moved them, whose time is after this one's; `void` leaves
                # what a newer fact planned. One write saved per booking, and the costliest,
                # a multi-document update)
                book.keep_only(
                    {"session_id": plan.session["session_id"], "kind": "reminder"},
                    [m["_id"] for m in plan.kept],
                    plan.reminders,
                    plan.at,
                )
            writes.append((planned + plan.kept, plan.at))
        book.plan_all(writes, known)

    def replan_client(self, view, client_id: str, as_of: datetime) -> None:
        """Contact details, consent or preferences changed: re-plan the reminders of the
        appointments still ahead at `as_of` (the event's time, or now for a preferences change)."""
        upcoming = view["sessions"].find(
            {"client_id": client_id, "status": "booked", "starts_at": {"$gt": as_of}}
        )
        for doc in upcoming:
            self._reconcile_reminders(
                view, {**doc, "session_id": doc["_id"]}, as_of, "contact preferences changed"
            )

    # -- records -------------------------------------------------------------------------
    def on_ClientRegistered(self, event, view):
        super().on_ClientRegistered(event, view)
        # bookings held for an enquiry that never came: the client is told as a client now
        view["enquirers"].update_one({"_id": event.data["client_id"]}, {"$unset": {"bookings": ""}})
        self._apply_awaiting(view, event.data["client_id"])
        self.replan_client(view, event.data["client_id"], event.recorded_at)

    def on_ClientDetailsCorrected(self, event, view):
        super().on_ClientDetailsCorrected(event, view)
        if "reminder_channels" in event.data or "therapist_id" in event.data:
            self.replan_client(view, event.data["client_id"], event.recorded_at)

    def on_ClientDischarged(self, event, view):
        contact = self.contact(view, event.data["client_id"])  # while they are still in care
        super().on_ClientDischarged(event, view)
        book = self.book(view)
        book.void(
            {"client_id": event.data["client_id"], "recipient": "client"},
            "client discharged",
            event.recorded_at,
        )
        # scheduling cancels what is still booked (boosters only when staff confirmed)
        ahead = {
            "client_id": event.data["client_id"],
            "status": "booked",
            "starts_at": {"$gt": event.data["discharged_at"]},
        }
        if not event.data.get("cancel_boosters"):
            ahead["kind"] = {"$ne": "booster"}
        cancelled = view["sessions"].find_one(ahead, {"_id": 1}) is not None
        planned = plans.care_ended(
            dict(event.data),
            contact,
            self.config_in(view).tz,
            event.recorded_at,
            sessions_cancelled=cancelled,
        )
        book.plan(planned, event.recorded_at)

    def on_TaskCompleted(self, event, view):
        self.book(view).void(
            {"task_id": event.data["task_id"]}, "task completed", event.recorded_at
        )

    def on_EnquiryReceived(self, event, view):
        """How to reach someone who got in touch (a booking link, and the confirmation of
        the time they book by it, go to them before they are a client); keyed by the client
        id records reserved for them. A link or booking that arrived first (another topic
        may run ahead of records') is planned now."""
        d = event.data
        view["enquirers"].update_one(
            {"_id": d["client_id"]},
            {"$set": {k: d.get(k) for k in ("enquiry_id", "email", "phone", "contact_by")}},
            upsert=True,
        )
        found = view["enquirers"].find_one({"_id": d["client_id"]})
        for kind in ("links", "bookings"):
            for held in found.get(kind) or []:
                self._plan_for_enquirer(view, kind, found, held["data"], held["recorded_at"])
        view["enquirers"].update_one(
            {"_id": d["client_id"]}, {"$unset": {"links": "", "bookings": ""}}
        )

    def _for_enquirer(self, view, client_id: str, kind: str, event) -> None:
        """Plan a link or a link booking's confirmation for someone who enquired, or hold
        it until their enquiry arrives. Only a person records reserved an id for at their
        enquiry is ever told here: a session of an unknown id with no enquiry behind it
        stays held as before (`awaiting`) until its client is registered."""
        found = view["enquirers"].find_one({"_id": client_id})
        if found is not None and found.get("contact_by") is not None:
            self._plan_for_enquirer(view, kind, found, dict(event.data), event.recorded_at)
            return
        held = {
            "event_id": event.event_id,
            "data": dict(event.data),
            "recorded_at": event.recorded_at,
        }
        view["enquirers"].update_one({"_id": client_id}, {"$addToSet": {kind: held}}, upsert=True)

    def _plan_for_enquirer(self, view, kind: str, enquirer: dict, data: dict, as_of) -> None:
        if kind == "links":
            planned = plans.booking_link(data, enquirer, as_of)
        elif data.get("course_id") or data.get("plan_id"):
            return  # a course is announced to a client, never to an enquirer
        else:
            planned = plans.booked_by_link(data, enquirer, as_of)
        self.book(view).plan(planned, as_of)

    # -- scheduling --------------------------------------------------------------------------
    def on_BookingLinkIssued(self, event, view):
        self._for_enquirer(view, event.data["client_id"], "links", event)

    def on_TherapistRegistered(self, event, view):
        d = event.data
        view["therapists"].update_one(
            {"_id": d["therapist_id"]},
            {"$set": {"name": d["name"], "email": d["email"]}},
            upsert=True,
        )

    def _save_session(self, event, view, status: str, *, read_back: bool = True) -> dict:
        """Keep what the event says of the session; returns the session as saved, with
        `new` set when this generation had not seen the session before (without
        `read_back`, a session seen before is not read again: what the event says)."""
        change = self._session_change(event, view, status)
        sid = event.data["session_id"]
        # the write first, then a read only of a session seen before: a booking is nearly
        # always new, and its read before the write was a quarter of the planner's wait on
        # the store in the busy hour (py-spy, issue 14). Not `find_one_and_update`: the
        # projection is its generation's only writer, in a transaction, and the local store
        # answers a findAndModify by reading the whole collection (bench/README.md, gaps of
        # the local servers)
        written = view["sessions"].update_one({"_id": sid}, {"$set": change}, upsert=True)
        if written.upserted_id is not None or not read_back:
            return {"_id": sid, **change, "session_id": sid, "new": written.upserted_id is not None}
        saved = view["sessions"].find_one({"_id": sid}) or {"_id": sid, **change}
        return {**saved, "session_id": sid, "new": False}

    @staticmethod
    def _session_change(event, view, status: str) -> dict:
        """What the event says of the session, as kept (its video link sealed)."""
        d = event.data
        facts = {k: d[k] for k in ("client_id", "therapist_id", "starts_at", "ends_at")}
        for k in ("modality", "room", "video_link", "kind", "course_id", "number"):
            if k in d:
                facts[k] = d[k]
        if facts.get("video_link"):
            facts["video_link"] = sealed_link(view, d["client_id"], facts["video_link"])
        return {**facts, "status": status}

    def on_SessionBooked(self, event, view):
        session = self._save_session(event, view, "booked")
        self._write_plans(view, [self._booking_plan(view, event, session)])

    def _booking_plan(self, view, event, session: dict) -> _SessionPlan:
        """A booking's confirmation and reminders, any reminder of it pending voided."""
        # a course or a booster plan is announced once, as a whole (CourseBooked, BoostersPlanned);
        # a booster booked on its own is confirmed like any session (issue 13: it was not)
        confirm = not session.get("course_id") and not event.data.get("plan_id")
        key = f"confirmation:{session['session_id']}"
        notice = ("confirmation", key) if confirm else None
        return _SessionPlan.of(
            self,
            view,
            session,
            event.recorded_at,
            notice,
            "superseded",
            unless_told_by_link=confirm,
        )

    def _save_sessions(self, events: list, view) -> list[dict]:
        """`_save_session` for a batch's bookings of distinct sessions, in two round trips
        (which of them this generation knows, then their writes together), not one each."""
        sessions = view["sessions"]
        changes = {e.data["session_id"]: self._session_change(e, view, "booked") for e in events}
        found = {d["_id"]: d for d in sessions.find({"_id": {"$in": list(changes)}})}
        sessions.bulk_write(
            [UpdateOne({"_id": sid}, {"$set": c}, upsert=True) for sid, c in changes.items()],
            ordered=False,
        )
        return [
            {**found.get(sid, {"_id": sid}), **c, "session_id": sid, "new": sid not in found}
            for sid, c in changes.items()
        ]

    @staticmethod
    def _link_keys(session_id: str) -> list[str]:
        """Where the confirmation sent when the person booked by link, before they were
        registered, would be: it has the client confirmation's own key on the channel the
        enquiry gave (plans.booked_by_link), so it is looked up by key, with the plan's own
        read (a look by session and kind cost the store four times as much; a look of its
        own was a fifth of the planner's wait on the store in the busy hour: issue 14)."""
        return [f"confirmation:{session_id}:{channel}" for channel in plans.ENQUIRER_CHANNELS]

    def on_SessionRescheduled(self, event, view):
        session = self._save_session(event, view, "booked")
        key = f"rescheduled:{session['session_id']}:{plans.stamp(session['starts_at'])}"
        self.book(view).void(
            {"session_id": session["session_id"], "kind": {"$in": list(SESSION_NOTICES)}},
            "the appointment moved again",
            event.recorded_at,
        )
        self._plan_session(
            view,
            session,
            event.recorded_at,
            notice=("rescheduled", key),
            reminders="appointment rescheduled",
        )

    def on_SessionCancelled(self, event, view):
        session = self._save_session(event, view, "cancelled")
        self.book(view).void(
            {"session_id": session["session_id"], "recipient": "client"},
            "appointment cancelled",
            event.recorded_at,
        )
        key = f"cancelled:{session['session_id']}"
        self._tell_client(view, "cancelled", key, session, event.recorded_at)

    def on_SessionAttended(self, event, view):
        self._session_over(event, view, "attended")

    def on_SessionMissed(self, event, view):
        self._session_over(event, view, "missed")

    def _sessions_over(self, view, events: list) -> None:
        """`_session_over` for a batch's ends of distinct sessions: their sessions' writes
        together, then their reminders voided together (two round trips, not two each)."""
        view["sessions"].bulk_write(
            [
                UpdateOne(
                    {"_id": e.data["session_id"]},
                    {"$set": self._session_change(e, view, OVER_TYPES[e.type])},
                    upsert=True,
                )
                for e in events
            ],
            ordered=False,
        )
        self.book(view).void_each(
            [
                (
                    {"session_id": e.data["session_id"], "kind": "reminder"},
                    f"appointment {OVER_TYPES[e.type]}",
                    e.recorded_at,
                )
                for e in events
            ]
        )

    def _session_over(self, event, view, status: str) -> None:
        self._save_session(event, view, status, read_back=False)
        self.book(view).void(
            {"session_id": event.data["session_id"], "kind": "reminder"},
            f"appointment {status}",
            event.recorded_at,
        )

    # -- billing ---------------------------------------------------------------------------
    def on_FundingSet(self, event, view):
        d = event.data
        view["funders"].update_one(
            {"_id": d["client_id"]},
            {"$set": {"payer": d["payer"], "payer_email": d.get("payer_email")}},
            upsert=True,
        )

    def on_InvoiceIssued(self, event, view):
        """The invoice to whoever pays it (plans.invoice): the funder's address is the one
        billing's funding holds (kept by on_FundingSet, which billing records first)."""
        funder = view["funders"].find_one({"_id": event.data["client_id"]}) or {}
        email = funder.get("payer_email") if funder.get("payer") != "self" else None
        planned = plans.invoice(dict(event.data), email, event.recorded_at)
        self.book(view).plan(planned, event.recorded_at)

    # -- measures ------------------------------------------------------------------------
    def on_QuestionnaireWithdrawn(self, event, view):
        self.book(view).void(
            {"request_id": event.data["request_id"]}, "request withdrawn", event.recorded_at
        )


@dataclass(frozen=True)
class _SessionPlan:
    """What a fact about a session plans (`Planner._plan_session`), before the book is read:
    the notice, the reminders kept (voiding the others for `reminders`, the reason) and the
    keys of the confirmation sent when the person booked by link, which cancel the notice."""

    session: dict
    at: datetime
    planned: list[dict]
    kept: list[dict]
    reminders: str | None
    links: list[str]

    @classmethod
    def of(
        cls,
        planner: Planner,
        view,
        session: dict,
        at: datetime,
        notice: tuple[str, str] | None,
        reminders: str | None,
        *,
        unless_told_by_link: bool = False,
    ) -> _SessionPlan:
        contact = planner.contact(view, session["client_id"])
        tz = planner.config_in(view).tz
        planned = plans.notice(*notice, session, contact, tz, at) if notice else []
        kept = plans.reminders(session, contact, tz, at) if reminders is not None else []
        links = Planner._link_keys(session["session_id"]) if unless_told_by_link else []
        return cls(session, at, planned, kept, reminders, links)

    def keys(self) -> list[str]:
        return [m["_id"] for m in self.planned + self.kept] + self.links


@dataclass(frozen=True)
class _Later:
    """A fact kept in `awaiting`, handed to the handlers again like the event it came from."""

    event_id: str
    type: str
    data: dict
    recorded_at: datetime


def sealed_link(view, client_id: str, link):
    """The client's video link is a credential to their room and personal data (issue 17):
    every copy the planner keeps (the sessions it knows, the messages it plans, the facts it
    holds for later) is sealed under the client's key, so shredding the key leaves no readable
    link. A link already sealed (a held fact applied later) is kept as it is."""
    if isinstance(link, dict) or view.cipher is None:
        return link
    if link == DISPOSED:  # a rebuild after disposal reads the placeholder: nothing to keep
        return None
    try:
        return view.cipher.seal_value(client_id, VIDEO_LINK, link)
    except KeyDisposed:  # a fact about a client disposed of meanwhile: keep no link at all
        return None


def _sealed_data(event, view) -> dict:
    data = dict(event.data)
    if data.get("video_link"):
        data["video_link"] = sealed_link(view, data["client_id"], data["video_link"])
    return data
