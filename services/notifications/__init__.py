"""Notifications: decides what to tell clients and staff from the other services' events,
keeps each message durable with its due time and idempotency key, and sends it once — by
email (SMTP), SMS (a provider's HTTP API) or the staff inbox."""

import shared.contracts  # noqa: F401  (registers every event type this service reads)
from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


def _projections():
    from .projections import projections

    return projections()


def _workers(settings):
    from .workers import workers

    return workers(settings)


def _dispose(settings, client_id):
    from shared.mongo import client

    from .application.book import forget_client

    mongo = client(settings.mongo_uri_of("notifications"))
    forget_client(mongo[settings.database("notifications")], client_id)


SERVICE = ServiceDefinition(
    "notifications", _create_app, projections=_projections, workers=_workers, dispose=_dispose
)
