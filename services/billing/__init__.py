"""Billing: fees, funding, charges from the diary, invoices, payments and reports."""

from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


def _projections():
    from .projections import all_projections

    return all_projections()


def _workers(settings):
    from .workers import workers

    return workers(settings)


SERVICE = ServiceDefinition("billing", _create_app, projections=_projections, workers=_workers)
