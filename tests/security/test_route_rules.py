"""Every route of every service's OpenAPI document has an access rule, and the rule is what
the service enforces: each role x each route -> the right status (issue: security). A new
route without `@requires(...)` or `@public` fails here."""

import importlib
import re

import pytest

from shared import services
from shared.web import view_roles

ROLES = ("admin", "therapist", "clinical_lead")
SERVICES = [d.name for d in services.available()] + (
    ["portal"] if importlib.util.find_spec("services.portal") else []
)

# Reception (admin) never reaches clinical content: notes, formulation, assessment, scores,
# risk, outcomes, exports and the audit trail (architecture.md, issue 4/5/9).
ADMIN_FORBIDDEN = re.compile(
    r"/(notes|formulation|assessment|trajectory|outcomes|responses|"
    r"risk-alerts|fhir|dashboards|audit|export|history|timeline)(/|$|\.)"
)
KERNEL_ROUTES = {"/healthz", "/readyz", "/metrics", "/openapi.json"}


def _roles_of(app, rule, method):
    return view_roles(app, rule, method)


def _rule_for(app, path, method):
    flask_path = re.sub(r"\{([^}]+)\}", r"<\1>", path)
    for rule in app.url_map.iter_rules():
        plain = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule.rule)
        if plain == flask_path and method.upper() in rule.methods:
            return rule
    return None


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method


@pytest.fixture
def app_for(settings):
    def build(name):
        return (
            services.load(name).create_app(settings)
            if name != "portal"
            else importlib.import_module("services.portal").SERVICE.create_app(settings)
        )

    return build


@pytest.mark.parametrize("service", SERVICES)
def test_every_documented_route_has_a_rule_and_every_api_route_is_documented(service, app_for):
    app = app_for(service)
    spec = app.test_client().get("/openapi.json").json
    missing = []
    for path, method in _operations(spec):
        rule = _rule_for(app, path, method)
        assert rule is not None, f"{service}: {method.upper()} {path} documented but not routed"
        if _roles_of(app, rule, method) is None:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"{service}: routes without an access rule: {missing}"
    documented = {(re.sub(r"\{([^}]+)\}", r"<\1>", p), m.upper()) for p, m in _operations(spec)}
    for rule in app.url_map.iter_rules():
        plain = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule.rule)
        if rule.endpoint == "static" or plain in KERNEL_ROUTES or plain.startswith("/api/docs"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            roles = _roles_of(app, rule, method)
            if roles is None and service == "portal":
                continue  # portal pages authenticate by session cookie, not bearer token
            if (plain, method) not in documented and roles != ("public",):
                pytest.fail(f"{service}: {method} {plain} is routed but not in openapi.json")


@pytest.mark.parametrize("service", SERVICES)
def test_each_role_on_each_route_gets_the_right_status(service, app_for, make_token):
    app = app_for(service)
    client = app.test_client()
    spec = client.get("/openapi.json").json
    failures = []
    for path, method in _operations(spec):
        rule = _rule_for(app, path, method)
        roles = _roles_of(app, rule, method)
        url = re.sub(r"\{[^}]+\}", "zz-unknown", path)
        call = getattr(client, method)
        body = {"json": {}} if method in ("post", "put", "patch") else {}
        anonymous = call(url, **body)
        if roles == ("public",):
            if anonymous.status_code in (401, 403) or anonymous.status_code >= 500:
                failures.append(
                    f"{method.upper()} {path} public but anonymous got {anonymous.status_code}"
                )
            continue
        if anonymous.status_code != 401:
            failures.append(
                f"{method.upper()} {path} without a token: {anonymous.status_code}, want 401"
            )
        if ADMIN_FORBIDDEN.search(path) and "admin" in roles:
            failures.append(f"{method.upper()} {path} is clinical but allows admin")
        for role in ROLES:
            token = make_token(role, therapist_id="t-unknown" if role == "therapist" else None)
            r = call(url, headers={"Authorization": f"Bearer {token}"}, **body)
            if r.status_code >= 500:
                failures.append(f"{method.upper()} {path} as {role}: {r.status_code}")
            elif role not in roles and r.status_code != 403:
                failures.append(f"{method.upper()} {path} as {role}: {r.status_code}, want 403")
            elif role in roles and (
                r.status_code == 401
                or (r.status_code == 403 and "may not do this" in (r.json or {}).get("detail", ""))
            ):
                failures.append(
                    f"{method.upper()} {path} as {role}: refused by role but allowed by rule"
                )
    assert not failures, "\n".join(failures)
