"""The portal's own settings, from the environment beside the kernel's `Settings`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from shared.config import ConfigError, Settings


@dataclass(frozen=True)
class PortalConfig:
    secret_key: str
    cookie_secure: bool = True
    session_hours: int = 8
    backend_timeout: float = 15.0

    @classmethod
    def from_env(cls, settings: Settings) -> PortalConfig:
        key = os.environ.get("RAPPORT_PORTAL_SECRET_KEY")
        if not key:
            if not settings.demo_mode:
                raise ConfigError("RAPPORT_PORTAL_SECRET_KEY must be set outside demo mode")
            # Demo only: a stable key derived from the demo token secret.
            key = hashlib.sha256(b"portal-session:" + settings.token_secret.encode()).hexdigest()
        if not settings.demo_mode and len(key) < 32:
            raise ConfigError("RAPPORT_PORTAL_SECRET_KEY must be at least 32 characters")
        # Secure cookies outside demo mode; the local demo (`make up`) is plain http on
        # 127.0.0.1, where a Secure cookie would never be sent back. The variable decides.
        default = "0" if settings.demo_mode else "1"
        secure = (os.environ.get("SESSION_COOKIE_SECURE") or default).strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        return cls(
            secret_key=key,
            cookie_secure=secure,
            session_hours=int(os.environ.get("RAPPORT_PORTAL_SESSION_HOURS", "8")),
            backend_timeout=float(os.environ.get("RAPPORT_PORTAL_BACKEND_TIMEOUT", "15")),
        )
