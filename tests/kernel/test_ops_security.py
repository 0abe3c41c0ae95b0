"""Operations security: /metrics behind a bearer token (issue 15, #14), the previous token
secret accepted for a stated grace period during rotation, and TLS/SASL settings for Kafka
and MongoDB reaching the clients' constructors (no TLS server needed: the arguments are
what is checked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.portal.app import create_app as create_portal
from services.portal.config import PortalConfig
from shared import kafka as kafka_clients
from shared import mongo as mongo_clients
from shared.auth import AuthError, issue_token, verify_rotating
from shared.config import ConfigError, Settings
from shared.web import create_service_app

METRICS_TOKEN = "m" * 40
PRODUCTION = {"demo_mode": False, "token_secret": "s" * 40}


def _kernel(settings):
    return create_service_app(
        "kernel", settings, title="Kernel test", description="test"
    ).test_client()


def _portal(settings):
    app = create_portal(
        settings, PortalConfig(secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False)
    )
    return app.test_client()


@pytest.mark.parametrize("make", [_kernel, _portal], ids=["service", "portal"])
def test_metrics_need_the_metrics_token(settings, make):
    client = make(settings.with_(**PRODUCTION, metrics_token=METRICS_TOKEN))
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": METRICS_TOKEN},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
    ):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, (headers, r.status_code)
        assert "rapport_" not in r.get_data(as_text=True)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200 and "rapport_store_up" in r.get_data(as_text=True)


@pytest.mark.parametrize("make", [_kernel, _portal], ids=["service", "portal"])
def test_metrics_without_a_configured_token_are_off_outside_demo_mode(settings, make):
    r = make(settings.with_(**PRODUCTION)).get("/metrics")
    assert r.status_code == 403 and "RAPPORT_METRICS_TOKEN" in r.get_json()["detail"]
    # the local demo stack (127.0.0.1 only) keeps its open /metrics
    assert make(settings.with_(demo_mode=True)).get("/metrics").status_code == 200


def test_a_short_metrics_token_refuses_to_start(monkeypatch):
    _production_env(monkeypatch)
    monkeypatch.setenv("RAPPORT_METRICS_TOKEN", "short")
    with pytest.raises(ConfigError, match="RAPPORT_METRICS_TOKEN"):
        Settings.from_env()


# -- token secret rotation ------------------------------------------------------------------
OLD, NEW = "old-secret-" + "o" * 30, "new-secret-" + "n" * 30


def _rotating(until):
    return Settings(token_secret=NEW, token_secret_previous=OLD, token_secret_previous_until=until)


def test_a_token_of_the_previous_secret_passes_until_the_stated_time_and_not_after():
    now = datetime.now(UTC)
    old_token = issue_token(OLD, sub="u1", role="therapist", therapist_id="t1")
    settings = _rotating(now + timedelta(hours=2))
    assert verify_rotating(settings, old_token, now=now).sub == "u1"
    assert verify_rotating(settings, issue_token(NEW, sub="u2", role="admin"), now=now).sub == "u2"
    with pytest.raises(AuthError):
        verify_rotating(settings, old_token, now=now + timedelta(hours=2))
    with pytest.raises(AuthError):  # without a grace period the old secret is simply wrong
        verify_rotating(Settings(token_secret=NEW), old_token, now=now)
    with pytest.raises(AuthError):  # a third secret is refused during the grace period too
        verify_rotating(settings, issue_token("x" * 40, sub="u3", role="admin"), now=now)
    expired = issue_token(OLD, sub="u1", role="admin", ttl_seconds=60, now=now - timedelta(hours=1))
    with pytest.raises(AuthError):  # the grace period never lengthens a token's own life
        verify_rotating(settings, expired, now=now)


def test_a_service_accepts_the_previous_secret_during_the_grace_period(settings):
    until = datetime.now(UTC) + timedelta(hours=1)
    app = create_service_app(
        "kernel",
        settings.with_(
            token_secret=NEW, token_secret_previous=OLD, token_secret_previous_until=until
        ),
        title="Kernel test",
        description="test",
    )
    from shared.auth import current_identity, requires

    @app.get("/whoami")
    @requires("admin")
    def whoami():
        return {"sub": current_identity().sub}

    client = app.test_client()
    old = issue_token(OLD, sub="before-rotation", role="admin")
    assert client.get("/whoami", headers={"Authorization": f"Bearer {old}"}).get_json() == {
        "sub": "before-rotation"
    }
    app.config["RAPPORT_SETTINGS"] = app.config["RAPPORT_SETTINGS"].with_(
        token_secret_previous_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert client.get("/whoami", headers={"Authorization": f"Bearer {old}"}).status_code == 401


def _production_env(monkeypatch):
    for name in (
        "RAPPORT_DEMO_MODE",
        "RAPPORT_TOKEN_SECRET_PREVIOUS",
        "RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL",
        "RAPPORT_METRICS_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET", NEW)
    monkeypatch.setenv("RAPPORT_MASTER_KEY", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=")


def test_rotation_settings_from_the_environment(monkeypatch):
    _production_env(monkeypatch)
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET_PREVIOUS", OLD)
    with pytest.raises(ConfigError, match="RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL"):
        Settings.from_env()  # a grace period must end
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL", "tomorrow")
    with pytest.raises(ConfigError, match="ISO time with offset"):
        Settings.from_env()
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL", "2026-12-02T09:00:00+00:00")
    settings = Settings.from_env()
    assert settings.token_secret_previous == OLD
    assert settings.token_secret_previous_until == datetime(2026, 12, 2, 9, tzinfo=UTC)
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET_PREVIOUS", NEW)
    with pytest.raises(ConfigError, match="current secret"):
        Settings.from_env()


# -- TLS and SASL ---------------------------------------------------------------------------
class _Recorder:
    """Stands in for a client class: keeps the keyword arguments it was built with."""

    calls: list

    def __init__(self, *args, **kwargs):
        type(self).calls.append({"args": args, **kwargs})

    def list_topics(self):
        return ["rapport.records"]

    def close(self):
        pass


def _recorder(name):
    return type(name, (_Recorder,), {"calls": []})


KAFKA_ENV = {
    "RAPPORT_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "RAPPORT_KAFKA_SSL_CAFILE": "/etc/rapport/kafka-ca.pem",
    "RAPPORT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "RAPPORT_KAFKA_SASL_USERNAME": "rapport",
    "RAPPORT_KAFKA_SASL_PASSWORD": "kafka-password",
}


def test_kafka_tls_and_sasl_reach_every_kafka_client(monkeypatch):
    for name, value in KAFKA_ENV.items():
        monkeypatch.setenv(name, value)
    producer, consumer, admin = _recorder("P"), _recorder("C"), _recorder("A")
    monkeypatch.setattr(kafka_clients, "KafkaProducer", producer)
    monkeypatch.setattr(kafka_clients, "KafkaConsumer", consumer)
    monkeypatch.setattr(kafka_clients, "KafkaAdminClient", admin)
    kafka_clients.producer("kafka-1:9093")
    kafka_clients.consumer("kafka-1:9093", group_id="g")
    kafka_clients.ensure_topics("kafka-1:9093", ["rapport.records"], 6)
    expected = {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/rapport/kafka-ca.pem",
        "ssl_check_hostname": True,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "rapport",
        "sasl_plain_password": "kafka-password",
    }
    for made in (producer, consumer, admin):
        (kwargs,) = made.calls
        assert {k: kwargs.get(k) for k in expected} == expected, made.__name__
        assert kwargs["bootstrap_servers"] == "kafka-1:9093"


def test_without_settings_kafka_stays_plaintext(monkeypatch):
    for name in KAFKA_ENV:
        monkeypatch.delenv(name, raising=False)
    producer = _recorder("P")
    monkeypatch.setattr(kafka_clients, "KafkaProducer", producer)
    kafka_clients.producer("127.0.0.1:19092")
    assert (
        "security_protocol" not in producer.calls[0]
        and "sasl_plain_password" not in producer.calls[0]
    )


def test_mongo_tls_and_credentials_reach_the_client(monkeypatch):
    for name, value in {
        "RAPPORT_MONGO_TLS": "true",
        "RAPPORT_MONGO_TLS_CA_FILE": "/etc/rapport/mongo-ca.pem",
        "RAPPORT_MONGO_TLS_CERT_KEY_FILE": "/etc/rapport/mongo-client.pem",
        "RAPPORT_MONGO_USERNAME": "rapport",
        "RAPPORT_MONGO_PASSWORD": "mongo-password",
        "RAPPORT_MONGO_AUTH_MECHANISM": "SCRAM-SHA-256",
    }.items():
        monkeypatch.setenv(name, value)
    made = _recorder("M")
    monkeypatch.setattr(mongo_clients.pymongo, "MongoClient", made)
    uri = "mongodb://mongo-0.example:27017/?replicaSet=rs0&tls-test=1"
    try:
        mongo_clients.client(uri)
    finally:
        mongo_clients._clients.pop(uri, None)
    (kwargs,) = made.calls
    assert kwargs["args"] == (uri,)
    assert {
        k: kwargs.get(k)
        for k in (
            "tls",
            "tlsCAFile",
            "tlsCertificateKeyFile",
            "username",
            "password",
            "authSource",
            "authMechanism",
        )
    } == {
        "tls": True,
        "tlsCAFile": "/etc/rapport/mongo-ca.pem",
        "tlsCertificateKeyFile": "/etc/rapport/mongo-client.pem",
        "username": "rapport",
        "password": "mongo-password",
        "authSource": "admin",
        "authMechanism": "SCRAM-SHA-256",
    }


@pytest.mark.parametrize(
    "env, named",
    [
        ({"RAPPORT_KAFKA_SECURITY_PROTOCOL": "TLS"}, "RAPPORT_KAFKA_SECURITY_PROTOCOL"),
        ({"RAPPORT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "RAPPORT_KAFKA_SASL_USERNAME"),
        (
            {
                "RAPPORT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "RAPPORT_KAFKA_SASL_MECHANISM": "GSSAPI",
                "RAPPORT_KAFKA_SASL_USERNAME": "u",
                "RAPPORT_KAFKA_SASL_PASSWORD": "p",
            },
            "RAPPORT_KAFKA_SASL_MECHANISM",
        ),
        ({"RAPPORT_MONGO_USERNAME": "rapport"}, "RAPPORT_MONGO_PASSWORD"),
    ],
)
def test_incomplete_connection_security_refuses_to_start(monkeypatch, env, named):
    _production_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        Settings.from_env()


def test_a_database_may_name_a_store_of_its_own_and_the_processes_started_inherit_it(
    monkeypatch,
):
    """RAPPORT_MONGO_URI_<NAME> gives database <name> its own store (`Settings.mongo_uri_of`);
    every other database stays on RAPPORT_MONGO_URI, and the environment a test or the bench
    gives the processes it starts says the same (testkit.procs.settings_env)."""
    from testkit.procs import settings_env

    own = "mongodb://127.0.0.1:1/?directConnection=true"
    monkeypatch.setenv("RAPPORT_DEMO_MODE", "1")
    monkeypatch.setenv("RAPPORT_MONGO_URI", "mongodb://127.0.0.1:2/")
    monkeypatch.setenv("RAPPORT_MONGO_URI_NOTIFICATIONS", own)
    monkeypatch.setenv("RAPPORT_MONGO_URI_BILLING", "")  # empty: not set
    settings = Settings.from_env()
    assert settings.mongo_uris == {"notifications": own}
    assert settings.mongo_uri_of("notifications") == own
    assert (
        settings.mongo_uri_of("keys")
        == settings.mongo_uri_of("records")
        == "mongodb://127.0.0.1:2/"
    )

    alone = settings.with_(mongo_uris={})
    env = settings_env(alone)
    assert not [k for k in env if k.startswith("RAPPORT_MONGO_URI_")]  # not inherited
    env = settings_env(settings)
    assert env["RAPPORT_MONGO_URI_NOTIFICATIONS"] == own
