"""Measures: instruments, pre-session questionnaires, scores, risk, outcomes, dashboards."""

from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


def _projections():
    from .app import projections

    return projections()


def _workers(settings):
    from .workers import workers

    return workers(settings)


SERVICE = ServiceDefinition(
    name="measures", create_app=_create_app, projections=_projections, workers=_workers
)
