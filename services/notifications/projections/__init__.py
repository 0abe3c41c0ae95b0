"""Notifications' projections: the planner (every message but the risk alerts) and the risk
alerts on a consumer of their own."""

from .alerts import RiskAlerts
from .planner import Planner, sealed_link

__all__ = ["Planner", "RiskAlerts", "sealed_link", "projections"]


def projections() -> list:
    return [Planner(), RiskAlerts()]
