"""The probes every service answers without a token: `/healthz` (the process is alive),
`/readyz` (its store and broker answer) and `/metrics` (Prometheus text, for the metrics
bearer token)."""

from __future__ import annotations

import hmac
import socket

from flask import Blueprint, Response, current_app, request
from pymongo.errors import PyMongoError

from . import metrics
from .auth import public
from .config import Settings
from .problems import problem

probes = Blueprint("probes", __name__)


def _settings() -> Settings:
    return current_app.config["RAPPORT_SETTINGS"]


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


@probes.get("/healthz")
@public
def healthz():
    return {"status": "ok", "service": current_app.config["RAPPORT_SERVICE"]}


@probes.get("/readyz")
@public
def readyz():
    checks = {}
    try:
        current_app.extensions["rapport"].mongo.admin.command("ping")
        checks["store"] = "ok"
    except PyMongoError as err:
        checks["store"] = f"unavailable: {type(err).__name__}"
    checks["broker"] = "ok" if _kafka_reachable(_settings().kafka_bootstrap) else "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return (
        {"status": "ready" if ready else "not ready", "checks": checks},
        200 if ready else 503,
    )


@probes.get("/metrics")
@public
def metrics_endpoint():
    refused = _metrics_refusal(_settings())
    if refused is not None:
        return refused
    body, content_type = metrics.exposition(current_app)
    return Response(body, mimetype=content_type)
