"""Read models of the measures service, built from scheduling's and its own events.

- questionnaire_plans: the sessions questionnaires must be requested for (scheduling's
  bookings, moves and cancellations). A plan whose `pending` flag is set is acted on by the
  planner loop (workers.py), which appends to the request's stream idempotently.
- measures_board: what staff read: responses, trajectory points, risk alerts, request status,
  and per course of treatment the paired scores and the NHS Talking Therapies outcome; an
  episode whose outcome changed is `pending` until the reactor publishes `OutcomeUpdated`.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from shared.projections import Projection

from .domain.outcomes import Measure, course_outcome

SESSION_FACTS = ("client_id", "therapist_id", "starts_at", "ends_at")
RESPONSE_FACTS = (
    "client_id",
    "therapist_id",
    "request_id",
    "session_id",
    "session_number",
    "course_id",
    "completed_at",
    "source",
)


def _point(completed: dict, score: dict) -> dict:
    """One total on the trajectory (any instrument the registry knows)."""
    return {
        "client_id": completed["client_id"],
        "instrument": score["instrument"],
        "at": completed["completed_at"],
        "session_id": completed.get("session_id"),
        "session_number": completed.get("session_number"),
        "total": score.get("total"),
        "band": score.get("band"),
        "prorated": score.get("prorated"),
    }


def episode_of(client_id: str, course_id: str | None) -> str:
    """A course of treatment; answers outside any booked course share one per client."""
    return course_id or f"{client_id}:no-course"


def _changed(event) -> dict:
    return {"pending": True, "last_event_id": event.event_id}


class QuestionnairePlans(Projection):
    service = "measures"
    name = "questionnaire_plans"
    batched = True  # the batch's writes combined and sent together (shared.projections)
    # a questionnaire is requested a day before its session: one batch per half second under
    # load, not one per few bookings, which queued the dashboard's at the store (Projection)
    linger = 0.5
    sources = ("scheduling",)
    collections = {"plans": [IndexModel("pending"), IndexModel("client_id")]}

    def on_SessionBooked(self, event, view):
        d = event.data
        view["plans"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    **{k: d[k] for k in SESSION_FACTS},
                    "course_id": d.get("course_id"),
                    "number": d.get("number"),
                    **_changed(event),
                },
                "$setOnInsert": {"status": "booked"},
                "$inc": {"rev": 1},
            },
            upsert=True,
        )

    def on_SessionRescheduled(self, event, view):
        d = event.data
        view["plans"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {**{k: d[k] for k in SESSION_FACTS}, **_changed(event)},
                "$setOnInsert": {"status": "booked"},
                "$inc": {"rev": 1},
            },
            upsert=True,
        )

    def on_SessionCancelled(self, event, view):
        d = event.data
        view["plans"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    **{k: d[k] for k in SESSION_FACTS},
                    "status": "cancelled",
                    **_changed(event),
                },
                "$inc": {"rev": 1},
            },
            upsert=True,
        )


# the scores of a batch's completed questionnaires, per course, until its outcomes are computed
MEASURED = "board:measured"
# the courses whose attended sessions a batch changed, until their outcomes are computed
RECOUNT = "board:recount"


class MeasuresBoard(Projection):
    service = "measures"
    name = "measures_board"
    batched = True  # the batch's writes combined and sent together (shared.projections)
    # under load, the bookings, attendances and requests of half a second go together, and
    # a completed questionnaire or a risk answer is applied at once with them: the board's
    # runner spent most of its time on batches of bookings alone, and a completion waited
    # behind them for the dashboard (issue 14; Projection.urgent). At a quarter second the
    # runner was still busy 92 % of the flows bench's busy hour (py-spy, session 42), and a
    # completion mostly came while it applied another batch: half a second, dashboard p50
    # lower in five pairs of flows runs out of five (bench/README.md)
    linger = 0.5
    urgent = frozenset({"QuestionnaireCompleted", "RiskIndicated", "RiskAcknowledged"})
    sources = ("scheduling", "measures")
    collections = {
        "sessions": [
            IndexModel("episode_id"),
            IndexModel([("client_id", ASCENDING), ("starts_at", ASCENDING)]),
        ],
        "responses": [IndexModel([("client_id", ASCENDING), ("completed_at", ASCENDING)])],
        "points": [IndexModel([("client_id", ASCENDING), ("at", ASCENDING)])],
        "alerts": [
            IndexModel([("status", ASCENDING), ("indicated_at", ASCENDING)]),
            IndexModel([("therapist_id", ASCENDING), ("status", ASCENDING)]),
            IndexModel("client_id"),
        ],
        "requests": [IndexModel([("client_id", ASCENDING), ("due_at", ASCENDING)])],
        "episodes": [
            IndexModel("client_id"),
            IndexModel("therapist_id"),
            IndexModel("pending"),
            IndexModel("last_measured_at"),
        ],
    }

    # -- sessions (attendance counts towards "finished treatment") ------------------------------
    def on_SessionBooked(self, event, view):
        d = event.data
        episode = episode_of(d["client_id"], d.get("course_id"))
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    "client_id": d["client_id"],
                    "therapist_id": d["therapist_id"],
                    "episode_id": episode,
                    "course_id": d.get("course_id"),
                    "number": d.get("number"),
                    "kind": d["kind"],
                    "starts_at": d["starts_at"],
                    # what the FHIR export's Appointment states (queries/fhir.py)
                    "ends_at": d["ends_at"],
                    "modality": d["modality"],
                    "status": "booked",
                }
            },
            upsert=True,
        )
        if d.get("course_id"):
            # an attendance that arrived before its booking counted towards the client's
            # answers outside any course; the booking moves it to its course: both are
            # recomputed then. Read for the whole batch at once, after; a booking that moved
            # nothing attended changes no outcome (outcomes count attended sessions only), and
            # one outside a course keeps its episode: each recomputed its course, a find and
            # an aggregate per batch of the measures consumer (issue 14)
            self._attendance_later(view, d["session_id"])

    def on_SessionRescheduled(self, event, view):
        d = event.data
        moved = {"starts_at": d["starts_at"], "ends_at": d["ends_at"], "modality": d["modality"]}
        view["sessions"].update_one({"_id": d["session_id"]}, {"$set": moved})

    def on_SessionCancelled(self, event, view):
        self._session_status(event, view, "cancelled")

    def on_SessionMissed(self, event, view):
        self._session_status(event, view, "missed")

    @staticmethod
    def _session_status(event, view, status: str) -> None:
        view["sessions"].update_one({"_id": event.data["session_id"]}, {"$set": {"status": status}})

    def on_SessionAttended(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    "attended": True,
                    "status": "attended",
                    "kind": d["kind"],
                    "client_id": d["client_id"],
                    "therapist_id": d["therapist_id"],
                },
                "$setOnInsert": {
                    "episode_id": episode_of(d["client_id"], None),
                    "starts_at": d["starts_at"],
                    "ends_at": d["ends_at"],
                },
            },
            upsert=True,
        )
        # its course is the one its booking gave it: read, for the whole batch at once, after
        self._attendance_later(view, d["session_id"])

    def _attendance_later(self, view, session_id: str) -> None:
        view.together("attendance", session_id, lambda ids: self._attendance(view, ids))

    def _attendance(self, view, session_ids: list[str]) -> None:
        """The courses whose attended sessions these attendances and bookings changed: the
        attended ones' courses, and the answers outside a course of a client whose early
        attendance a booking may have moved from there."""
        for doc in view["sessions"].find(
            {"_id": {"$in": session_ids}, "attended": True},
            {"episode_id": 1, "client_id": 1, "course_id": 1},
        ):
            touched = [doc["episode_id"]]
            if doc.get("course_id"):
                touched.append(episode_of(doc["client_id"], None))
            for episode_id in touched:
                view.memo.setdefault(RECOUNT, set()).add(episode_id)
                self._recompute_later(view, episode_id)

    # -- requests -------------------------------------------------------------------------------
    def on_QuestionnaireRequested(self, event, view):
        d = event.data
        view["requests"].update_one(
            {"_id": d["request_id"]},
            {
                "$set": {
                    k: d.get(k)
                    for k in (
                        "client_id",
                        "therapist_id",
                        "session_id",
                        "instruments",
                        "due_at",
                        "expires_at",
                        "session_starts_at",
                        "session_number",
                    )
                },
                "$setOnInsert": {"status": "requested"},
            },
            upsert=True,
        )

    def on_QuestionnaireResent(self, event, view):
        d = event.data
        view["requests"].update_one(
            {"_id": d["request_id"]},
            {
                "$set": {
                    "client_id": d["client_id"],
                    "resends": d["resend"],
                    "last_resent_at": d["resent_at"],
                },
                "$setOnInsert": {"status": "requested"},
            },
            upsert=True,
        )

    def on_QuestionnaireWithdrawn(self, event, view):
        view["requests"].update_one(
            {"_id": event.data["request_id"]},
            {"$set": {"status": "withdrawn", "client_id": event.data["client_id"]}},
            upsert=True,
        )

    # -- responses, trajectory and outcomes -------------------------------------------------------
    def on_QuestionnaireCompleted(self, event, view):
        d = event.data
        episode = episode_of(d["client_id"], d.get("course_id"))
        scores = [dict(s) for s in d["scores"]]
        kept = {k: d.get(k) for k in RESPONSE_FACTS}
        view["responses"].update_one(
            {"_id": d["response_id"]},
            {"$set": {**kept, "episode_id": episode, "scores": scores}},
            upsert=True,
        )
        for s in scores:
            view["points"].update_one(
                {"_id": f"{d['response_id']}:{s['instrument']}"},
                {"$set": _point(d, s)},
                upsert=True,
            )
        if d.get("request_id"):
            view["requests"].update_one(
                {"_id": d["request_id"]},
                {
                    "$set": {
                        "status": "completed",
                        "completed_at": d["completed_at"],
                        "client_id": d["client_id"],
                    }
                },
                upsert=True,
            )
        self._measured(view, d, episode, {s["instrument"]: s.get("total") for s in scores})

    def _measured(self, view, d: dict, episode: str, totals: dict) -> None:
        """PHQ-9 and GAD-7 totals count towards the course's NHS Talking Therapies outcome."""
        if "PHQ-9" not in totals and "GAD-7" not in totals:
            return
        # written with the course's outcome, after the batch's read of its courses
        # (_recompute): written here, the read had to send it first, a round trip of its own
        # between a completed questionnaire and the dashboard (issue 14)
        measured = view.memo.setdefault(MEASURED, {}).setdefault(episode, {"push": []})
        measured["set"] = {
            "client_id": d["client_id"],
            "therapist_id": d["therapist_id"],
            "course_id": d.get("course_id"),
        }
        measured["push"].append(
            {
                "response_id": d["response_id"],
                "at": d["completed_at"],
                "phq9": totals.get("PHQ-9"),
                "gad7": totals.get("GAD-7"),
            }
        )
        self._recompute_later(view, episode)

    def _recompute_later(self, view, episode_id: str) -> None:
        """Once per batch, for every course it touched together, on the batch's final state
        (View.together): a batch of bookings and scores recomputed each course's outcome after
        every one, a find and a count each, and the dashboard's completions waited behind them
        (issue 14: QuestionnaireCompleted -> dashboard was the slowest flow)."""
        view.together("outcomes", episode_id, lambda ids: self._recompute(view, ids))

    def _recompute(self, view, episode_ids: list[str]) -> None:
        episodes = {d["_id"]: d for d in view["episodes"].find({"_id": {"$in": episode_ids}})}
        for episode_id, measured in view.memo.pop(MEASURED, {}).items():  # the batch's scores
            view["episodes"].update_one(
                {"_id": episode_id},
                {"$set": measured["set"], "$push": {"measures": {"$each": measured["push"]}}},
                upsert=True,
            )
            episode = episodes.setdefault(episode_id, {"_id": episode_id})
            episode.update(measured["set"])
            episode["measures"] = [*episode.get("measures", []), *measured["push"]]
        if not episodes:
            return  # no scores yet: attendance alone has no outcome to publish
        # attended sessions change only by an attendance or a booking that moves one
        # (_attendance, which names its courses here); a course with an outcome and none of
        # those in the batch keeps its count: counting them again was a round trip more
        # between every completed questionnaire and the dashboard (issue 14)
        recount = view.memo.pop(RECOUNT, set())
        attended = {
            e: episode["outcome"]["attended_sessions"]
            for e, episode in episodes.items()
            if e not in recount
            and (episode.get("outcome") or {}).get("attended_sessions") is not None
        }
        counting = [e for e in episodes if e not in attended]
        if counting:
            attended.update(self._attended_counts(view, counting))
        for episode_id, episode in episodes.items():
            self._outcome(view, episode, attended.get(episode_id, 0))

    @staticmethod
    def _attended_counts(view, episode_ids: list[str]) -> dict[str, int]:
        return {
            d["_id"]: d["n"]
            for d in view["sessions"].aggregate(
                [
                    {
                        "$match": {
                            "episode_id": {"$in": episode_ids},
                            "attended": True,
                            "kind": {"$ne": "assessment"},
                        }
                    },
                    {"$group": {"_id": "$episode_id", "n": {"$sum": 1}}},
                ]
            )
        }

    @staticmethod
    def _outcome(view, episode: dict, attended: int) -> None:
        measures = [Measure(m["at"], m["phq9"], m["gad7"]) for m in episode.get("measures", [])]
        outcome = course_outcome(measures, attended)
        paired = sorted(m.at for m in measures if m.paired)
        changes = {
            "outcome": outcome,
            "first_measured_at": paired[0] if paired else None,
            "last_measured_at": paired[-1] if len(paired) >= 2 else None,
        }
        if all(episode.get(k) == v for k, v in changes.items()):
            return
        view["episodes"].update_one(
            {"_id": episode["_id"]}, {"$set": {**changes, "pending": True}, "$inc": {"rev": 1}}
        )

    # -- risk -----------------------------------------------------------------------------------
    def on_RiskIndicated(self, event, view):
        d = event.data
        view["alerts"].update_one(
            {"_id": d["alert_id"]},
            {
                # .get: the answer is sealed, and absent once the client is disposed of
                "$set": {
                    k: d.get(k)
                    for k in (
                        "client_id",
                        "therapist_id",
                        "response_id",
                        "instrument",
                        "item",
                        "answer",
                        "unanswered",
                        "indicated_at",
                    )
                },
                "$setOnInsert": {"status": "open"},
            },
            upsert=True,
        )

    def on_RiskAcknowledged(self, event, view):
        d = event.data
        view["alerts"].update_one(
            {"_id": d["alert_id"]},
            {
                "$set": {
                    "status": "acknowledged",
                    "client_id": d["client_id"],
                    "acknowledged_by": d["by"],
                    "acknowledged_at": d["acknowledged_at"],
                    "note": d.get("note"),
                }
            },
            upsert=True,
        )
