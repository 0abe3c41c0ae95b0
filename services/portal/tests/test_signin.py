"""Signing in on the web: CSRF, cookie flags, security headers, lockout, sign-out that
really ends the session, no open redirect, pages guarded by role."""

from .conftest import PASSWORD, csrf_of, sign_in


def test_pages_need_a_signed_in_user(portal):
    r = portal.test_client().get("/clients?q=emma")
    assert r.status_code == 302 and r.headers["Location"].startswith("/sign-in?next=/clients")


def test_sign_in_without_the_csrf_token_is_refused(portal, staff):
    client = portal.test_client()
    client.get("/sign-in")
    r = client.post(
        "/sign-in",
        data={"email": "lead@rapport.test", "password": PASSWORD},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 400 and "did not come from this site" in r.get_data(as_text=True)
    r = client.post(
        "/sign-in",
        data={"email": "lead@rapport.test", "password": PASSWORD, "csrf_token": "forged"},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 400


def test_sign_in_sets_a_fresh_httponly_samesite_cookie_and_goes_where_asked(portal, staff):
    client = portal.test_client()
    client.get("/sign-in")
    before = client.get_cookie("rapport_portal").value
    r = sign_in(client, "lead@rapport.test", next_="/risk")
    assert r.status_code == 302 and r.headers["Location"] == "/risk"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get_cookie("rapport_portal").value != before


def test_secure_cookie_flag_is_on_outside_demo_mode_and_configurable(settings, monkeypatch):
    from services.portal.config import PortalConfig

    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("RAPPORT_PORTAL_SECRET_KEY", "p" * 40)
    production = settings.with_(demo_mode=False, token_secret="s" * 40)
    assert PortalConfig.from_env(production).cookie_secure is True
    assert PortalConfig.from_env(settings).cookie_secure is False  # local demo over http
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    assert PortalConfig.from_env(settings).cookie_secure is True
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    assert PortalConfig.from_env(production).cookie_secure is False


def test_outside_demo_mode_the_session_key_must_be_set(settings, monkeypatch):
    import pytest

    from services.portal.config import PortalConfig
    from shared.config import ConfigError

    monkeypatch.delenv("RAPPORT_PORTAL_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        PortalConfig.from_env(settings.with_(demo_mode=False, token_secret="s" * 40))


def test_no_open_redirect_after_sign_in(portal, staff):
    for target in ("https://evil.example/", "//evil.example/x"):
        r = sign_in(portal.test_client(), "lead@rapport.test", next_=target)
        assert r.status_code == 302 and r.headers["Location"] == "/"


def test_wrong_password_shows_one_message_and_the_fifth_locks(portal, staff):
    client = portal.test_client()
    for _ in range(5):
        r = sign_in(client, "lead@rapport.test", "not it")
        assert r.status_code == 401
        assert "do not match" in r.get_data(as_text=True)
    r = sign_in(client, "lead@rapport.test", PASSWORD)
    assert r.status_code == 429 and "locked for 15 minutes" in r.get_data(as_text=True)


def test_security_headers_on_every_page(portal):
    r = portal.test_client().get("/sign-in")
    csp = r.headers["Content-Security-Policy"]
    assert (
        "'unsafe-inline'" not in csp
        and "script-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
    )
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert 'style="' not in r.get_data(as_text=True)  # CSP would block inline styles


def test_sign_out_ends_the_session_on_the_server(portal, staff, services):
    services.on("GET", "/therapists", [])
    client = portal.test_client()
    sign_in(client, "reception@rapport.test")
    stolen = client.get_cookie("rapport_portal").value
    page = client.get("/diary")
    assert page.status_code == 200
    r = client.post("/sign-out", data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert r.status_code == 302
    thief = portal.test_client()
    thief.set_cookie("rapport_portal", stolen)
    assert thief.get("/diary").status_code == 302  # the replayed cookie no longer signs in


def test_roles_see_only_their_pages(signed_in):
    admin = signed_in("admin")
    assert admin.get("/risk", headers={"Accept": "text/html"}).status_code == 403
    assert admin.get("/dashboard", headers={"Accept": "text/html"}).status_code == 403
    assert admin.get("/caseload", headers={"Accept": "text/html"}).status_code == 403
    therapist = signed_in("therapist")
    assert therapist.get("/dashboard", headers={"Accept": "text/html"}).status_code == 403


def test_the_stylesheet_and_script_are_served_from_the_portal_itself(portal):
    client = portal.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    for asset in ("/assets/portal.css", "/assets/portal.js"):
        assert f'"{asset}"' in page
        r = client.get(asset)
        assert r.status_code == 200 and r.mimetype in (
            "text/css",
            "text/javascript",
            "application/javascript",
        )
    assert "http" not in page.split("<body>")[0].replace("http-equiv", "")  # no CDN in the head
