"""Flask helpers: problem+json errors, auth, health, readiness, OpenAPI, metrics."""

from datetime import UTC, datetime, timedelta

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shared.auth import issue_token, requires
from shared.domain import Conflict, NotFound
from shared.web import create_service_app, created

blp = Blueprint("things", __name__, url_prefix="/things")


class ThingIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    size = fields.Integer(required=True, validate=validate.Range(min=1, max=10))


@blp.route("")
class Things(MethodView):
    @blp.arguments(ThingIn)
    @requires("admin", "clinical_lead")
    def post(self, body):
        if body["name"] == "taken":
            raise Conflict("that name is taken", field="name")
        return created({"id": "t1", **body}, "/things/t1")


@blp.route("/<thing_id>")
class Thing(MethodView):
    @requires("admin", "clinical_lead", "therapist")
    def get(self, thing_id):
        raise NotFound(f"no thing {thing_id}")


@pytest.fixture
def client(settings):
    app = create_service_app(
        "kernel", settings, title="Kernel test", description="test", blueprints=[blp]
    )
    return app.test_client()


def test_created_with_location(client, auth_header):
    r = client.post("/things", json={"name": "a", "size": 3}, headers=auth_header("admin"))
    assert r.status_code == 201 and r.headers["Location"] == "/things/t1"


def test_malformed_json_is_400_problem(client, auth_header):
    r = client.post(
        "/things", data="{not json", content_type="application/json", headers=auth_header("admin")
    )
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"
    assert r.json["status"] == 400


def test_field_errors_are_422_naming_each_field(client, auth_header):
    r = client.post("/things", json={"size": 99}, headers=auth_header("admin"))
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    fields_ = {e["field"]: e["reason"] for e in r.json["errors"]}
    assert set(fields_) == {"name", "size"}
    assert "Missing" in fields_["name"]


def test_no_token_forged_token_and_expired_token_are_401(client, settings):
    assert client.post("/things", json={"name": "a", "size": 1}).status_code == 401
    forged = issue_token("another-secret-entirely-another-secret", sub="x", role="admin")
    r = client.post(
        "/things", json={"name": "a", "size": 1}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    old = issue_token(
        settings.token_secret,
        sub="x",
        role="admin",
        now=datetime.now(UTC) - timedelta(hours=2),
        ttl_seconds=60,
    )
    r = client.post(
        "/things", json={"name": "a", "size": 1}, headers={"Authorization": f"Bearer {old}"}
    )
    assert r.status_code == 401 and r.json["detail"] == "token expired"


def test_wrong_role_is_403(client, auth_header):
    r = client.post("/things", json={"name": "a", "size": 1}, headers=auth_header("therapist"))
    assert r.status_code == 403 and r.mimetype == "application/problem+json"


def test_domain_errors_map_to_409_and_404(client, auth_header):
    r = client.post("/things", json={"name": "taken", "size": 1}, headers=auth_header("admin"))
    assert r.status_code == 409 and r.json["errors"] == [
        {"field": "name", "reason": "that name is taken"}
    ]
    r = client.get("/things/zz", headers=auth_header("therapist"))
    assert r.status_code == 404 and "zz" in r.json["detail"]


def test_unknown_route_is_404_problem(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_correlation_id_is_carried_back(client):
    r = client.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
    assert r.status_code == 200 and r.headers["X-Correlation-ID"] == "abc-123"
    assert client.get("/healthz").headers["X-Correlation-ID"]


def test_readyz_checks_store_and_broker(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["checks"] == {"store": "ok", "broker": "ok"}


def test_readyz_reports_a_missing_broker(settings):
    app = create_service_app(
        "kernel",
        settings.with_(kafka_bootstrap="127.0.0.1:1"),
        title="t",
        description="t",
        blueprints=[],
    )
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["broker"] == "unavailable"


def test_openapi_documents_the_routes_and_bearer_auth(client):
    spec = client.get("/openapi.json").json
    assert "/things" in spec["paths"] and "/things/{thing_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    body = spec["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/ThingIn")


def test_metrics_expose_requests_and_outbox(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'rapport_http_requests_total{method="GET",route="/healthz",service="kernel",status="200"}'
        in text
    )
    assert 'rapport_outbox_backlog{service="kernel"} 0.0' in text
    assert 'rapport_store_up{service="kernel"} 1.0' in text
