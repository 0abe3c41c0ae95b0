"""Flask pieces every service uses: the app factory, problem+json errors, health and
readiness, OpenAPI (flask-smorest), Prometheus metrics, correlation ids and the lazy
per-process MongoDB client (created after gunicorn forks)."""

from __future__ import annotations

import hmac
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_smorest import Api
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from . import (
    consistency,
    contracts,  # noqa: F401  (every process knows the whole published language)
    idempotency,
    logs,
    metrics,
)
from .apidoc import document_kernel_headers
from .auth import AuthError, Forbidden, authenticate, public
from .bodies import MAX_DEPTH, too_deep
from .config import Settings
from .crypto import KeyDisposed, cipher_for
from .domain import DomainError
from .events import Actor, registry
from .eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend
from .mongo import client as mongo_client
from .projections import Projection, ProjectionStore

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    cid = g.get("correlation_id")
    if cid:
        body["correlation_id"] = cid
    return Response(json.dumps(body, default=str), status=status, mimetype=PROBLEM)


def _flatten(messages, prefix: str = "") -> list[dict]:
    """webargs/marshmallow messages -> [{"field": "json.start", "reason": "..."}]."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if prefix == "" and key == "json":
                name = ""
            out.extend(_flatten(value, name))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out.extend({"field": prefix or "body", "reason": m} for m in messages)
        else:
            for item in messages:
                out.extend(_flatten(item, prefix))
    else:
        out.append({"field": prefix or "body", "reason": str(messages)})
    return out


class RapportApi(Api):
    """flask-smorest's Api answering errors as application/problem+json."""

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        messages = data.get("errors") or data.get("messages")
        errors = _flatten(messages) if messages else None
        detail = data.get("message") or (
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
            if errors
            else error.description
        )
        if error.code == 500:
            detail = "internal error"
        response = problem(error.code or 500, error.name, detail, errors=errors)
        for key, value in (data.get("headers") or {}).items():
            response.headers[key] = value
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


class RequestEventStore(EventStore):
    """The store as a request sees it: the position of what it appended goes back to the
    caller (X-Rapport-Position), and an idempotency claim is committed with the events."""

    def append_streams(self, appends: list[StreamAppend], meta: Metadata, *, also=None, **options):
        if not has_request_context() or g.get("rapport_claim") is None:
            events = super().append_streams(appends, meta, also=also, **options)
        else:
            clients = {e.data.get("client_id") for a in appends for e in a.events} - {None}

            def with_claim(session):
                if also is not None:
                    also(session)
                idempotency.in_transaction(self.db, session, clients)

            events = super().append_streams(appends, meta, also=with_claim, **options)
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
        return mongo_client(self.settings.mongo_uri)

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
            self.mongo,
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


def view_roles(app: Flask, rule, method: str):
    """The roles a route's handler declares (`@requires` / `@public`), or None."""
    view = app.view_functions.get(rule.endpoint)
    handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
    return getattr(handler, "_rapport_roles", None)


def _kafka_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _metrics_refusal(settings: Settings) -> Response | None:
    """/metrics is for Prometheus only (issue 15, #14: it was public on every service and the
    portal, and names routes, backlogs and lag). It needs `Authorization: Bearer
    <RAPPORT_METRICS_TOKEN>`; without a token configured it is open only in demo mode (the
    local stack binds to 127.0.0.1) and refused otherwise."""
    expected = settings.metrics_token
    if not expected:
        if settings.demo_mode:
            return None
        return problem(
            403,
            "Forbidden",
            "metrics are off: set RAPPORT_METRICS_TOKEN and scrape with it "
            "as a bearer token (deploy/README.md)",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return None
    response = problem(401, "Unauthorized", "metrics need the metrics bearer token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
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
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    document_kernel_headers(api)
    app.extensions["rapport_api"] = api
    projections = list(projections)
    metrics.register_service_collector(service, app, projections, extra_metrics)

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Correlation-ID", "")
        g.correlation_id = incoming if 0 < len(incoming) <= 64 else str(uuid.uuid4())
        logs.correlation_id.set(g.correlation_id)

    @app.before_request
    def _enforce_access():
        # Authenticate before the body is validated, whatever the decorator order on the
        # view: an anonymous caller learns nothing about a route's schema (401, not 422).
        roles = view_roles(app, request.url_rule, request.method) if request.url_rule else None
        if roles and roles != ("public",):
            identity = authenticate()
            if identity.role not in roles:
                raise Forbidden(f"role {identity.role} may not do this")

    @app.before_request
    def _refuse_deep_json():
        # after authentication (401 first, as for any body), before anything parses the body (webargs, get_json): deep nesting would make the
        # parser recurse until it fails with a 500 (issue 15 #4)
        if request.is_json and too_deep(request.get_data(cache=True)):
            return problem(
                400, "Bad Request", f"the JSON body is nested deeper than {MAX_DEPTH} levels"
            )

    @app.before_request
    def _consistency():
        # after authentication: idempotency keys are scoped by the caller
        consistency.start_request()
        identity = g.get("identity")
        if identity is not None and request.method in idempotency.METHODS:
            ctx = context()
            ctx.ensure_kernel_indexes()
            return idempotency.begin(ctx.db, identity.sub, settings.master_key)

    @app.after_request
    def _consistency_headers(response: Response):
        consistency.finish(response)
        if g.get("rapport_claim") is not None:
            idempotency.finish(context().db, response, settings.master_key)
        return response

    @app.teardown_request
    def _release_key(exc):
        if g.get("rapport_claim") is not None:
            try:
                idempotency.release(context().db)
            except PyMongoError:
                log.warning("could not release an idempotency key; it expires by itself")

    @app.after_request
    def _finish(response: Response):
        response.headers["X-Correlation-ID"] = g.get("correlation_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.observe_request(
            service,
            request.method,
            rule,
            response.status_code,
            time.perf_counter() - g.get("started", time.perf_counter()),
        )
        return response

    @app.errorhandler(AuthError)
    def _auth(err: AuthError):
        response = problem(
            err.status, "Unauthorized" if err.status == 401 else "Forbidden", err.detail
        )
        if err.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="rapport"'
        return response

    @app.errorhandler(DomainError)
    def _domain(err: DomainError):
        errors = [{"field": err.field, "reason": err.detail}] if err.field else None
        return problem(err.status, err.title, err.detail, errors=errors, code=err.code)

    @app.errorhandler(KeyDisposed)
    def _disposed(err: KeyDisposed):
        return problem(
            409, "Conflict", "this client's record has been disposed of", code="disposed"
        )

    @app.errorhandler(consistency.BadConsistencyHeader)
    def _bad_consistency_header(err):
        return problem(400, "Bad Request", str(err))

    @app.errorhandler(idempotency.KeyRefused)
    def _key_refused(err: idempotency.KeyRefused):
        titles = {400: "Bad Request", 409: "Conflict", 422: "Unprocessable Entity"}
        response = problem(
            err.status,
            titles[err.status],
            err.detail,
            code=err.code,
            errors=[{"field": idempotency.HEADER, "reason": err.detail}]
            if err.status == 422
            else None,
        )
        if err.position:
            response.headers[consistency.POSITION_HEADER] = err.position
        return response

    @app.errorhandler(idempotency.ClaimLost)
    def _claim_lost(err):
        return problem(
            409,
            "Conflict",
            "a retry with the same Idempotency-Key took this request "
            "over; its answer is the one that counts",
            code="key_taken_over",
        )

    @app.errorhandler(ConcurrencyError)
    def _concurrency(err: ConcurrencyError):
        return problem(
            409, "Conflict", "the record changed while you were saving; reload and try again"
        )

    @app.errorhandler(PyMongoError)
    def _store_down(err: PyMongoError):
        log.error("store error: %r", err)
        return problem(
            503, "Service Unavailable", "the record store is unavailable; try again shortly"
        )

    @app.get("/healthz")
    @public
    def healthz():
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    @public
    def readyz():
        checks = {}
        try:
            context().mongo.admin.command("ping")
            checks["store"] = "ok"
        except PyMongoError as err:
            checks["store"] = f"unavailable: {type(err).__name__}"
        checks["broker"] = "ok" if _kafka_reachable(settings.kafka_bootstrap) else "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return (
            {"status": "ready" if ready else "not ready", "checks": checks},
            200 if ready else 503,
        )

    @app.get("/metrics")
    @public
    def metrics_endpoint():
        refused = _metrics_refusal(settings)
        if refused is not None:
            return refused
        body, content_type = metrics.exposition(current_app)
        return Response(body, mimetype=content_type)

    return app


def trust_proxies(app: Flask, settings: Settings) -> None:
    """Behind an ingress the peer is the proxy: take the client's address (for the public
    pages' per-address limits) from the X-Forwarded-For entries the configured number of
    trusted proxies added (`RAPPORT_PROXY_HOPS`; 0, the default, trusts none)."""
    import os

    from werkzeug.middleware.proxy_fix import ProxyFix

    hops = int(settings.extra.get("proxy_hops", os.environ.get("RAPPORT_PROXY_HOPS", "0")))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
