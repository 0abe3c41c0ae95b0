"""Settings from the environment (Flask convention: configuration is injected, never read
deep inside the code). One `Settings` per process; tests build their own."""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace

SERVICES = ("scheduling", "records", "measures", "notifications", "portal")
DEFAULT_PORTS = {"portal": 8100, "scheduling": 8101, "records": 8102,
                 "measures": 8103, "notifications": 8104}
DEMO_TOKEN_SECRET = "rapport-demo-token-secret-not-for-production"
DEMO_MASTER_KEY = "cmFwcG9ydC1kZW1vLW1hc3Rlci1rZXktMzJieXRlcyE="  # base64 of a 32-byte demo key
PRACTICE_TZ = "Europe/London"


class ConfigError(RuntimeError):
    """Raised at start-up when the environment is unsafe or incomplete."""


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:19092"
    mongo_uri: str = "mongodb://127.0.0.1:27117/?directConnection=true"
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
    service_urls: dict = field(default_factory=lambda: {
        name: f"http://127.0.0.1:{port}" for name, port in DEFAULT_PORTS.items()})
    extra: dict = field(default_factory=dict)

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"

    def database(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls) -> "Settings":
        # Unset means off (issue 15, #7): a deployment that forgot its secrets must refuse to
        # start, not come up accepting tokens signed with the public demo secret.
        demo = _env_bool("RAPPORT_DEMO_MODE", False)
        if not demo:
            missing = [n for n in ("RAPPORT_TOKEN_SECRET", "RAPPORT_MASTER_KEY") if not os.environ.get(n)]
            if missing:
                raise ConfigError(
                    f"{' and '.join(missing)} not set. Outside demo mode Rapport needs its own "
                    "secrets: RAPPORT_TOKEN_SECRET (32+ random characters) and RAPPORT_MASTER_KEY "
                    "(32 random bytes, base64), from the environment or a Kubernetes Secret. "
                    "For the demo practice on this machine run `make up`.")
        secret = os.environ.get("RAPPORT_TOKEN_SECRET", DEMO_TOKEN_SECRET)
        urls = {name: os.environ.get(f"RAPPORT_{name.upper()}_URL",
                                     f"http://127.0.0.1:{port}")
                for name, port in DEFAULT_PORTS.items()}
        settings = cls(
            kafka_bootstrap=os.environ.get("RAPPORT_KAFKA_BOOTSTRAP", cls.kafka_bootstrap),
            mongo_uri=os.environ.get("RAPPORT_MONGO_URI", cls.mongo_uri),
            topic_prefix=os.environ.get("RAPPORT_TOPIC_PREFIX", cls.topic_prefix),
            db_prefix=os.environ.get("RAPPORT_DB_PREFIX", cls.db_prefix),
            topic_partitions=int(os.environ.get("RAPPORT_TOPIC_PARTITIONS", "6")),
            token_secret=secret,
            master_key=os.environ.get("RAPPORT_MASTER_KEY", DEMO_MASTER_KEY),
            token_ttl_seconds=int(os.environ.get("RAPPORT_TOKEN_TTL_SECONDS", str(8 * 3600))),
            demo_mode=demo,
            practice_name=os.environ.get("RAPPORT_PRACTICE_NAME", cls.practice_name),
            service_urls=urls,
        )
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
        try:
            if len(base64.b64decode(self.master_key, validate=True)) != 32:
                raise ConfigError("RAPPORT_MASTER_KEY must be 32 bytes, base64-encoded")
        except binascii.Error:
            raise ConfigError("RAPPORT_MASTER_KEY must be base64")
