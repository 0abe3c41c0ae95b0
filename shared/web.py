"""Flask pieces every service uses: the app factory (OpenAPI through flask-smorest, the
error answers of shared/problems.py, the probes of shared/probes.py, the request hooks of
shared/request_hooks.py, Prometheus metrics), the per-process store and projections of a
service (its MongoDB client created lazily, after gunicorn forks), and small answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence

from flask import Flask, Response, current_app, g, has_request_context
from marshmallow import fields
from pymongo.client_session import ClientSession

from . import (
    consistency,
    contracts,  # noqa: F401  (every process knows the whole published language)
    idempotency,
    logs,
    metrics,
)
from .apidoc import document_kernel_headers
from .config import Settings
from .crypto import cipher_for
from .events import Actor, Event, registry
from .eventstore import EventStore, Metadata, StreamAppend
from .inputs import Moment
from .mongo import client as mongo_client
from .probes import probes
from .problems import RapportApi, register_error_handlers
from .problems import problem as problem  # re-exported: services answer problems too
from .projections import Projection, ProjectionStore
from .request_hooks import register_request_hooks
from .request_hooks import view_roles as view_roles  # re-exported for the route-rule checks


class RequestEventStore(EventStore):
    """The store as a request sees it: the position of what it appended goes back to the
    caller (X-Rapport-Position), and an idempotency claim is committed with the events."""

    def append_streams(
        self,
        appends: Sequence[StreamAppend],
        meta: Metadata,
        *,
        also: Callable[[ClientSession], None] | None = None,
    ) -> list[Event]:
        if not has_request_context() or g.get("rapport_claim") is None:
            events = super().append_streams(appends, meta, also=also)
        else:
            clients = {
                e.data["client_id"]
                for a in appends
                for e in a.events
                if e.data.get("client_id") is not None
            }

            def with_claim(session: ClientSession) -> None:
                if also is not None:
                    also(session)
                idempotency.in_transaction(self.db, session, clients)

            events = super().append_streams(appends, meta, also=with_claim)
            if events:
                idempotency.committed()
        consistency.note_appended(events)
        return events


class ServiceContext:
    """Per-process access to this service's store and projections."""

    def __init__(self, service: str, settings: Settings):
        self.service, self.settings = service, settings
        self._store: EventStore | None = None
        self._kernel_indexes = False

    @property
    def mongo(self):
        return mongo_client(self.settings.mongo_uri_of(self.service))

    @property
    def db(self):
        return self.mongo[self.settings.database(self.service)]

    def ensure_kernel_indexes(self) -> None:
        """Indexes of the collections the kernel keeps beside a service's own (once)."""
        if not self._kernel_indexes:
            idempotency.ensure_indexes(self.db)
            self._kernel_indexes = True

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = RequestEventStore(
                self.mongo,
                self.settings.database(self.service),
                registry,
                cipher=cipher_for(self.settings),
            )
            self._store.ensure_indexes()
        return self._store

    def projection(self, projection: Projection) -> ProjectionStore:
        return ProjectionStore(
            mongo_client(self.settings.mongo_uri_of(projection.service)),
            self.settings.database(projection.service),
            projection,
            registry,
            cipher=cipher_for(self.settings),
        )


def context() -> ServiceContext:
    return current_app.extensions["rapport"]


def request_metadata() -> Metadata:
    """Who is acting, and the correlation id, for the events a request produces."""
    identity = g.get("identity")
    actor = Actor(id=identity.sub, role=identity.role) if identity else Actor.system("anonymous")
    return Metadata(actor=actor, correlation_id=g.get("correlation_id") or str(uuid.uuid4()))


def created(body: dict, location: str) -> Response:
    response = Response(json.dumps(body, default=str), status=201, mimetype="application/json")
    response.headers["Location"] = location
    return response


def create_service_app(
    service: str,
    settings: Settings,
    *,
    title: str,
    description: str,
    blueprints: Iterable = (),
    projections: Iterable[Projection] = (),
    extra_metrics: Callable | None = None,
) -> Flask:
    """A service's Flask app: its API blueprints documented by flask-smorest (`flask --app
    services.<name>.wsgi openapi write` writes the document), the kernel's request hooks,
    error answers and probes, and its metrics."""
    logs.configure(service)
    app = Flask(service)
    app.config.update(
        RAPPORT_SETTINGS=settings,
        RAPPORT_SERVICE=service,
        API_TITLE=title,
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
            "security": [{"bearerAuth": []}],
        },
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
    )
    app.extensions["rapport"] = ServiceContext(service, settings)
    api = RapportApi(app)
    api.register_field(Moment, fields.String)  # what a client sends is a string
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    document_kernel_headers(api)
    app.extensions["rapport_api"] = api
    projections = list(projections)
    metrics.register_service_collector(service, app, projections, extra_metrics)

    register_request_hooks(app)
    register_error_handlers(app)
    app.register_blueprint(probes)
    return app


def trust_proxies(app: Flask, settings: Settings) -> None:
    """Behind an ingress the peer is the proxy: take the client's address (for the public
    pages' per-address limits) from the X-Forwarded-For entries the configured number of
    trusted proxies added (`RAPPORT_PROXY_HOPS`; 0, the default, trusts none)."""
    import os

    from werkzeug.middleware.proxy_fix import ProxyFix

    hops = int(settings.extra.get("proxy_hops", os.environ.get("RAPPORT_PROXY_HOPS", "0")))
    if hops > 0:
        # Flask's documented way to wrap the WSGI app in middleware
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
