"""Settings from the environment (Flask convention: configuration is injected, never read
deep inside the code). One `Settings` per process; tests build their own."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

SERVICES = ("scheduling", "records", "measures", "notifications", "billing", "portal")
DEFAULT_PORTS = {
    "portal": 8100,
    "scheduling": 8101,
    "records": 8102,
    "measures": 8103,
    "notifications": 8104,
    "billing": 8105,
}
DEMO_TOKEN_SECRET = "rapport-demo-token-secret-not-for-production"
DEMO_MASTER_KEY = "cmFwcG9ydC1kZW1vLW1hc3Rlci1rZXktMzJieXRlcyE="  # base64 of a 32-byte demo key
PRACTICE_TZ = "Europe/London"


class ConfigError(RuntimeError):
    """Raised at start-up when the environment is unsafe or incomplete."""


MONGO_URI_OF = "RAPPORT_MONGO_URI_"


def mongo_uri_env(name: str) -> str:
    """The variable naming database `name`'s own store: RAPPORT_MONGO_URI_<NAME>."""
    return f"{MONGO_URI_OF}{name.upper()}"


def mongo_uris_from_env() -> dict[str, str]:
    """{database name: its store's URI} from RAPPORT_MONGO_URI_<NAME> (Settings.mongo_uris)."""
    return {
        key[len(MONGO_URI_OF) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(MONGO_URI_OF) and value
    }


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:19092"
    # the local store; retryWrites=false there: deploy/local/infra.py::mongo_uri says why
    mongo_uri: str = "mongodb://127.0.0.1:27117/?directConnection=true&retryWrites=false"
    # A database's own store, where it is not `mongo_uri` ({"notifications": uri}, from
    # RAPPORT_MONGO_URI_NOTIFICATIONS & co): each service keeps its own projections, and its
    # database may live on a server of its own (`mongo_uri_of`).
    mongo_uris: dict = field(default_factory=dict)
    # Prefixes let tests (and several practices on one cluster) share a broker and a store.
    topic_prefix: str = "rapport."
    db_prefix: str = "rapport_"
    topic_partitions: int = 6
    token_secret: str = DEMO_TOKEN_SECRET
    token_ttl_seconds: int = 8 * 3600
    master_key: str = DEMO_MASTER_KEY  # base64 AES-256 key wrapping the per-client keys
    # off unless asked for: only `make up` (deploy/local/stack.py) and the tests turn it on
    demo_mode: bool = False
    practice_name: str = "Rapport Practice, Maidstone"  # clients see it: nothing clinical
    practice_tz: str = PRACTICE_TZ
    service_urls: dict = field(
        default_factory=lambda: {
            name: f"http://127.0.0.1:{port}" for name, port in DEFAULT_PORTS.items()
        }
    )
    extra: dict = field(default_factory=dict)
    # Rotation (deploy/README.md): tokens signed with the previous secret are still accepted,
    # for verification only, until the stated time; new tokens are signed with token_secret.
    token_secret_previous: str = ""
    token_secret_previous_until: datetime | None = None
    # Bearer token Prometheus sends for /metrics; empty outside demo mode = /metrics refused
    metrics_token: str = ""
    # how long a process keeps a client's data key (shared/crypto.py); a disposal's sweep
    # waits this long after the key is destroyed (shared/disposal.py). Tests shorten it
    key_cache_seconds: float = 30.0

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"

    def database(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    def mongo_uri_of(self, name: str) -> str:
        """The store that holds database `name` (a service's, or the kernel's "keys" and
        "audit"): its own when one is set, else `mongo_uri`. No transaction spans two
        databases of two stores: a service's transactions write its own database only."""
        return self.mongo_uris.get(name, self.mongo_uri)

    def store_uris(self) -> list[str]:
        """Every store these settings use, once each: the main one, then the databases' own."""
        return list(dict.fromkeys([self.mongo_uri, *self.mongo_uris.values()]))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls) -> Settings:
        # Unset means off (issue 15, #7): a deployment that forgot its secrets must refuse to
        # start, not come up accepting tokens signed with the public demo secret.
        demo = _env_bool("RAPPORT_DEMO_MODE", False)
        if not demo:
            missing = [
                n for n in ("RAPPORT_TOKEN_SECRET", "RAPPORT_MASTER_KEY") if not os.environ.get(n)
            ]
            if missing:
                raise ConfigError(
                    f"{' and '.join(missing)} not set. Outside demo mode Rapport needs its own "
                    "secrets: RAPPORT_TOKEN_SECRET (32+ random characters) and RAPPORT_MASTER_KEY "
                    "(32 random bytes, base64), from the environment or a Kubernetes Secret. "
                    "For the demo practice on this machine run `make up`."
                )
        secret = os.environ.get("RAPPORT_TOKEN_SECRET", DEMO_TOKEN_SECRET)
        urls = {
            name: os.environ.get(f"RAPPORT_{name.upper()}_URL", f"http://127.0.0.1:{port}")
            for name, port in DEFAULT_PORTS.items()
        }
        settings = cls(
            kafka_bootstrap=os.environ.get("RAPPORT_KAFKA_BOOTSTRAP", cls.kafka_bootstrap),
            mongo_uri=os.environ.get("RAPPORT_MONGO_URI", cls.mongo_uri),
            mongo_uris=mongo_uris_from_env(),
            topic_prefix=os.environ.get("RAPPORT_TOPIC_PREFIX", cls.topic_prefix),
            db_prefix=os.environ.get("RAPPORT_DB_PREFIX", cls.db_prefix),
            topic_partitions=int(os.environ.get("RAPPORT_TOPIC_PARTITIONS", "6")),
            token_secret=secret,
            master_key=os.environ.get("RAPPORT_MASTER_KEY", DEMO_MASTER_KEY),
            token_ttl_seconds=int(os.environ.get("RAPPORT_TOKEN_TTL_SECONDS", str(8 * 3600))),
            demo_mode=demo,
            practice_name=os.environ.get("RAPPORT_PRACTICE_NAME", cls.practice_name),
            service_urls=urls,
            **_rotation_from_env(),
            metrics_token=os.environ.get("RAPPORT_METRICS_TOKEN", ""),
        )
        # TLS and SASL reach every client through shared/kafka.py and shared/mongo.py, which
        # read them where clients are made (many callers hold only a bootstrap or a URI);
        # reading them here too refuses to start on a bad value, before any connection
        kafka_options_from_env()
        mongo_options_from_env()
        settings.check()
        return settings

    def check(self) -> None:
        """Demo secrets are refused outside demo mode."""
        if not self.demo_mode:
            if self.token_secret == DEMO_TOKEN_SECRET:
                raise ConfigError("RAPPORT_TOKEN_SECRET must be set outside demo mode")
            if len(self.token_secret) < 32:
                raise ConfigError("RAPPORT_TOKEN_SECRET must be at least 32 characters")
            if self.master_key == DEMO_MASTER_KEY:
                raise ConfigError("RAPPORT_MASTER_KEY must be set outside demo mode")
        if self.metrics_token and len(self.metrics_token) < 32:
            raise ConfigError("RAPPORT_METRICS_TOKEN must be at least 32 characters")
        if self.token_secret_previous:
            if self.token_secret_previous_until is None:
                raise ConfigError(
                    "RAPPORT_TOKEN_SECRET_PREVIOUS needs RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL "
                    "(an ISO time with offset, e.g. 2026-12-02T09:00:00+00:00)"
                )
            if self.token_secret_previous == self.token_secret:
                raise ConfigError(
                    "RAPPORT_TOKEN_SECRET_PREVIOUS is the current secret: rotation needs a new one"
                )
        try:
            if len(base64.b64decode(self.master_key, validate=True)) != 32:
                raise ConfigError("RAPPORT_MASTER_KEY must be 32 bytes, base64-encoded")
        except binascii.Error:
            raise ConfigError("RAPPORT_MASTER_KEY must be base64") from None


def _rotation_from_env() -> dict:
    previous = os.environ.get("RAPPORT_TOKEN_SECRET_PREVIOUS", "")
    raw = os.environ.get("RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL", "").strip()
    until = None
    if raw:
        try:
            until = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            until = None
        if until is None or until.tzinfo is None:
            raise ConfigError(
                "RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL must be an ISO time with offset, "
                "e.g. 2026-12-02T09:00:00+00:00"
            )
    return {"token_secret_previous": previous, "token_secret_previous_until": until}


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def kafka_options_from_env() -> dict:
    """kafka-python keyword arguments for TLS and SASL, from RAPPORT_KAFKA_*; {} (plaintext,
    the local broker) when none is set. Every client (producer, consumer, admin) gets them."""
    protocol = os.environ.get("RAPPORT_KAFKA_SECURITY_PROTOCOL", "").strip().upper()
    if not protocol:
        return {}
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(
            f"RAPPORT_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}"
        )
    options: dict = {"security_protocol": protocol}
    if "SSL" in protocol:
        for env, key in (
            ("RAPPORT_KAFKA_SSL_CAFILE", "ssl_cafile"),
            ("RAPPORT_KAFKA_SSL_CERTFILE", "ssl_certfile"),
            ("RAPPORT_KAFKA_SSL_KEYFILE", "ssl_keyfile"),
        ):
            if os.environ.get(env):
                options[key] = os.environ[env]
        options["ssl_check_hostname"] = _env_bool("RAPPORT_KAFKA_SSL_CHECK_HOSTNAME", True)
    if protocol.startswith("SASL"):
        mechanism = os.environ.get("RAPPORT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").strip().upper()
        if mechanism not in KAFKA_MECHANISMS:
            raise ConfigError(
                f"RAPPORT_KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_MECHANISMS)}"
            )
        user, password = (
            os.environ.get("RAPPORT_KAFKA_SASL_USERNAME"),
            os.environ.get("RAPPORT_KAFKA_SASL_PASSWORD"),
        )
        if not user or not password:
            raise ConfigError(
                f"{protocol} needs RAPPORT_KAFKA_SASL_USERNAME and RAPPORT_KAFKA_SASL_PASSWORD"
            )
        options.update(
            sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password
        )
    return options


def mongo_options_from_env() -> dict:
    """pymongo keyword arguments for TLS and authentication, from RAPPORT_MONGO_*; {} when
    none is set (they may also be in RAPPORT_MONGO_URI; these keep the password out of it)."""
    options: dict = {}
    if _env_bool("RAPPORT_MONGO_TLS", False):
        options["tls"] = True
        for env, key in (
            ("RAPPORT_MONGO_TLS_CA_FILE", "tlsCAFile"),
            ("RAPPORT_MONGO_TLS_CERT_KEY_FILE", "tlsCertificateKeyFile"),
        ):
            if os.environ.get(env):
                options[key] = os.environ[env]
    user, password = (
        os.environ.get("RAPPORT_MONGO_USERNAME"),
        os.environ.get("RAPPORT_MONGO_PASSWORD"),
    )
    if user or password:
        if not (user and password):
            raise ConfigError("RAPPORT_MONGO_USERNAME and RAPPORT_MONGO_PASSWORD go together")
        options.update(
            username=user,
            password=password,
            authSource=os.environ.get("RAPPORT_MONGO_AUTH_SOURCE", "admin"),
        )
        if os.environ.get("RAPPORT_MONGO_AUTH_MECHANISM"):
            options["authMechanism"] = os.environ["RAPPORT_MONGO_AUTH_MECHANISM"]
    return options
