"""Portal fixtures: the portal app on the real store (isolated database per test), staff
users, signing in through the real form, and — for page tests — a stand-in for the other
services: a real HTTP server on a free port that answers with bodies shaped like their
OpenAPI documents and records what the portal sent (the end-to-end tests in tests/e2e run
the real services instead)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from services.portal.app import create_app
from services.portal.config import PortalConfig
from services.portal.security import user_store

PASSWORD = "correct horse battery"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # pytest closes its capture before late requests end
        pass


class Services:
    """One HTTP server standing in for scheduling, records, measures and notifications."""

    def __init__(self):
        self.answers: dict[tuple[str, str], tuple[int, object]] = {}
        self.headers: dict[tuple[str, str], dict] = {}  # extra answer headers, by route
        self.calls: list[dict] = []
        app = Flask("services-stand-in")

        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH"])
        def answer(path):
            key = (request.method, "/" + path)
            self.calls.append(
                {
                    "method": request.method,
                    "path": "/" + path,
                    "args": dict(request.args),
                    "json": request.get_json(silent=True),
                    "authorization": request.headers.get("Authorization", ""),
                    "headers": dict(request.headers),
                    "idempotency_key": request.headers.get("Idempotency-Key"),
                }
            )
            status, body, delay = self.answers.get(
                key, (404, {"title": "Not Found", "status": 404, "detail": f"no {key}"}, 0)
            )
            time.sleep(delay)
            if isinstance(body, str):  # a download (CSV)
                return app.response_class(body, status=status, mimetype="text/csv")
            response = jsonify(body)
            response.status_code = status
            response.headers.update(self.headers.get(key, {}))
            if status >= 400:
                response.mimetype = "application/problem+json"
            return response

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(
        self, method: str, path: str, body, status: int = 200, delay: float = 0, headers=None
    ) -> None:
        self.answers[(method, path)] = (status, body, delay)
        self.headers[(method, path)] = dict(headers or {})

    def last(self, method: str, path: str) -> dict:
        found = [c for c in self.calls if c["method"] == method and c["path"] == path]
        seen = [(c["method"], c["path"]) for c in self.calls]
        assert found, f"the portal never called {method} {path}; calls: {seen}"
        return found[-1]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def services():
    stand_in = Services()
    yield stand_in
    stand_in.close()


@pytest.fixture
def portal(settings, services):
    urls = dict.fromkeys(
        ("scheduling", "records", "measures", "notifications", "billing"), services.url
    )
    app = create_app(
        settings.with_(service_urls=urls),
        PortalConfig(
            secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False, backend_timeout=1
        ),
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture
def users(portal):
    # No app context held open: requests must each get their own (and their own `g`).
    with portal.app_context():
        store = user_store()
    return store


@pytest.fixture
def staff(users):
    """One user per role (the therapist is therapist t-1)."""
    return {
        "admin": users.add(
            email="reception@rapport.test", name="Rita Reception", role="admin", password=PASSWORD
        ),
        "therapist": users.add(
            email="sarah@rapport.test",
            name="Dr Sarah Okafor",
            role="therapist",
            password=PASSWORD,
            therapist_id="t-1",
        ),
        "clinical_lead": users.add(
            email="lead@rapport.test", name="Lee Lead", role="clinical_lead", password=PASSWORD
        ),
    }


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client, email: str, password: str = PASSWORD, next_: str | None = None):
    page = client.get("/sign-in")
    token = csrf_of(page.get_data(as_text=True))
    url = "/sign-in" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def signed_in(portal, staff):
    """`signed_in(role)` -> a test client with a signed-in session of that role."""

    def make(role: str):
        client = portal.test_client()
        response = sign_in(client, staff[role].email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make
