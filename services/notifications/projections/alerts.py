"""Risk alerts, planned by a projection of their own that reads only measures' topic.

The planner reads four topics, and every SessionBooked costs it a confirmation, reminders and
their reconciliation. In the busiest hour its backlog of bookings held risk answers back: in
the flows bench at 12 bookings a second, RiskIndicated -> the lead's alert e-mail took 7.4 s
(p50) while a booking reached records in 0.25 s (issue 14). On a consumer of its own, a risk
answer waits only behind other risk answers and questionnaire events. A risk alert goes to
staff (never waits for the client's record) and its plan needs only the event
(domain/plans.risk_alert), so nothing it reads is the planner's."""

from __future__ import annotations

from shared.projections import Projection, SessionCollection

from ..application.book import INDEXES as BOOK_INDEXES
from ..application.book import MessageBook
from ..domain import Facts, planned_on

URGENT_BELL = "risk_alerts_planned"


class RiskAlerts(Projection):
    service = "notifications"
    name = "risk_alerts"
    sources = ("measures",)
    collections: dict = {}
    outside = BOOK_INDEXES  # the message book it plans alerts into
    rings = (URGENT_BELL,)  # the urgent lane rests on it (workers/dispatcher.py)
    HANDLES = ("RiskIndicated", "RiskAcknowledged")
    # it reads all of measures' topic for these two: the rest (bookings' requests, answers)
    # waits up to half a second and goes with the next alert, where each few of them were a
    # transaction of offsets alone on notifications' store, three in five of its commits in
    # the flows bench (issue 14; Projection.urgent)
    linger = 0.5
    urgent = frozenset(HANDLES)

    def on_RiskIndicated(self, event, view):
        """Every kind the registry plans on a risk answer (the staff alert, kinds.py), at the
        event's own time, into the message book the dispatchers send from."""
        book = MessageBook(view.database, view.session)
        facts = Facts(
            dict(event.data), None, event.data.get("therapist_id"), None, event.recorded_at
        )
        for kind in planned_on(event.type):
            book.plan(kind.planned_on[event.type](facts), event.recorded_at)

    def on_RiskAcknowledged(self, event, view):
        # the staff inbox shows who followed the alert up; the alert itself still stands
        inbox = SessionCollection(view.database["inbox"], view.session)
        inbox.update_many(
            {"alert_id": event.data["alert_id"]},
            {
                "$set": {
                    "acknowledged_at": event.data["acknowledged_at"],
                    "acknowledged_by": event.data["by"],
                }
            },
        )
