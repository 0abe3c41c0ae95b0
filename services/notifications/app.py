"""The notifications service's app factory (gunicorn: `services.notifications.wsgi:app`)."""

from __future__ import annotations

from flask import Flask
from prometheus_client.core import GaugeMetricFamily

from shared.config import Settings
from shared.web import create_service_app

from . import api, queries
from .application.book import STATUSES
from .projections import projections


def _message_metrics(ctx, now):
    """Messages by state, and how overdue the oldest pending one is (a stuck dispatcher)."""
    messages = ctx.db["messages"]
    counts = GaugeMetricFamily(
        "rapport_notifications", "Messages in the book by state", labels=["status"]
    )
    for status in STATUSES:
        counts.add_metric([status], messages.count_documents({"status": status}))
    yield counts
    oldest = messages.find_one(
        {"status": "pending", "next_at": {"$lte": now}}, {"next_at": 1}, sort=[("next_at", 1)]
    )
    overdue = GaugeMetricFamily(
        "rapport_notifications_overdue_seconds", "How long the oldest due message has waited"
    )
    overdue.add_metric([], (now - oldest["next_at"]).total_seconds() if oldest else 0.0)
    yield overdue


def create_app(settings: Settings) -> Flask:
    return create_service_app(
        "notifications",
        settings,
        title="Rapport notifications",
        description="Booking confirmations, reminders, questionnaire links, homework reminders, "
        "booster invitations and risk alerts, by email, SMS and the staff inbox.",
        blueprints=[*queries.BLUEPRINTS, *api.BLUEPRINTS],
        projections=projections(),
        extra_metrics=_message_metrics,
    )
