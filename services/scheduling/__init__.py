"""Scheduling: therapists' availability, sessions, IPT courses and boosters."""

from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


def _projections():
    from .projections import all_projections

    return all_projections()


def _workers(settings):
    from .workers import make_canceller

    return [make_canceller(settings).run]


SERVICE = ServiceDefinition("scheduling", _create_app, projections=_projections, workers=_workers)
