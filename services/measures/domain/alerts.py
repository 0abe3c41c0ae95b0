"""A risk alert (pure): raised by a risk item answered above 0 or left blank, acknowledged
once, by a clinician who says what was done (clinical.md: item 9 of PHQ-9 needs follow-up
whatever the total)."""

from __future__ import annotations

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from .commands import AcknowledgeRisk
from .streams import evolve_by


class RiskAlertDecider:
    def initial_state(self) -> dict:
        return {"status": "none"}

    def evolve(self, state: dict, event) -> dict:
        return evolve_by(_ALERT_EVOLVE, state, event)

    def decide(self, state: dict, command: AcknowledgeRisk) -> list[NewEvent]:
        if state["status"] == "none":
            raise NotFound("no such risk alert")
        if state["status"] == "acknowledged":
            raise Conflict(f"this alert was already acknowledged by {state['by']}")
        if not command.note.strip():
            raise Invalid("say what was done", field="note")
        return [
            NewEvent(
                "RiskAcknowledged",
                {
                    "alert_id": state["alert_id"],
                    "client_id": state["client_id"],
                    "by": command.by,
                    "note": command.note,
                    "acknowledged_at": command.now,
                },
            )
        ]


_ALERT_EVOLVE = {
    "RiskIndicated": lambda state, event: {"status": "open", **event.data},
    "RiskAcknowledged": lambda state, event: {
        **state,
        "status": "acknowledged",
        "by": event.data["by"],
    },
}
