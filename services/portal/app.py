"""The staff web portal: server-rendered pages over the four services' APIs, staff sign-in
and the token API. It owns the staff users and their web sessions, and no clinical data."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.config import Settings
from shared.web import create_service_app, problem

from . import api
from .api import TooManyAttempts
from .charts import closeness_circle
from .config import PortalConfig
from .pages import blueprint as pages
from .security import csrf_token, current_user, security_headers


def create_app(settings: Settings, config: PortalConfig | None = None) -> Flask:
    config = config or PortalConfig.from_env(settings)
    app = create_service_app(
        "portal",
        settings,
        title="Rapport staff portal",
        description="Staff sign-in and the web pages of the practice. The pages are HTML and "
        "not listed here; the JSON API issues bearer tokens for the services.",
        blueprints=[api.blp],
    )
    app.config.update(
        PORTAL=config,
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_NAME="rapport_portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=config.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.session_hours),
    )
    app.register_blueprint(pages)
    hops = int(settings.extra.get("proxy_hops", os.environ.get("RAPPORT_PROXY_HOPS", "0")))
    if hops > 0:
        # the public pages (the homework link) limit attempts per client address: behind an
        # ingress take it from the X-Forwarded-For entries of the trusted proxies (as measures)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.after_request(security_headers)
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        current_user=current_user,
        closeness_circle=closeness_circle,
        practice_name=settings.practice_name,
    )
    api_handler = app.extensions["rapport_api"].handle_http_exception

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        # JSON callers get problem+json (the kernel's handler); people get a page.
        if request.path.startswith("/api/") or not _wants_html():
            return api_handler(err)
        return render_template(
            "error.html", status=err.code, title=err.name, detail=err.description
        ), err.code

    @app.errorhandler(TooManyAttempts)
    def _locked(err: TooManyAttempts):
        response = problem(429, "Too Many Requests", err.detail)
        response.headers["Retry-After"] = "900"
        return response

    return app


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html"
