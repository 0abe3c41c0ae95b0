"""The staff web portal (port 8100): sign-in, tokens and the practice's pages."""

from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


SERVICE = ServiceDefinition("portal", _create_app, projections=list, publishes=False)
