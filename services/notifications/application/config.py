"""The notifications service's own settings, from the environment (tests pass overrides
through `Settings.extra["notifications"]`). No real mail leaves a dev machine: the defaults
point at the local sinks `devmail` (SMTP 8025) and `devsms` (HTTP 8026)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from zoneinfo import ZoneInfo

from shared.config import Settings
from shared.wakeup import IDLE_REST

from ..domain import DEFAULT_QUIET, QuietHours


@dataclass(frozen=True)
class NotifyConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "appointments@rapport.test"
    sms_url: str = "http://127.0.0.1:8026/messages"
    sms_timeout: float = 5.0
    lead_email: str = "lead@rapport.test"
    quiet_hours: str = "-".join(DEFAULT_QUIET)  # "off" for none
    max_attempts: int = 6
    backoff_seconds: float = 30.0
    backoff_cap_seconds: float = 3600.0
    lease_seconds: float = 120.0  # far longer than one SMTP or HTTP timeout
    poll_seconds: float = 0.25  # without change streams, how often an idle dispatcher looks
    # with them, an idle dispatcher wakes on every new or changed message (a risk alert at
    # once) and otherwise looks this often, for messages that fall due with time (reminders)
    idle_rest_seconds: float = IDLE_REST
    practice_tz: str = "Europe/London"
    practice_name: str = "Rapport"
    measures_url: str = "http://127.0.0.1:8103"
    scheduling_url: str = "http://127.0.0.1:8101"  # booking links' tokens
    records_url: str = "http://127.0.0.1:8102"  # the client's homework link (task reminder)
    billing_url: str = "http://127.0.0.1:8105"  # an invoice's PDF, fetched at send time
    # what an invoice e-mail says about paying: due this many days after issue, and how
    payment_terms_days: int = 30
    payment_instructions: str = (
        "Please pay by bank transfer or card, quoting the invoice number as the reference."
    )
    portal_url: str = "http://127.0.0.1:8100"  # where staff open a client's record (risk alerts)
    token_secret: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.practice_tz)

    @property
    def default_quiet(self) -> QuietHours | None:
        if not self.quiet_hours or self.quiet_hours.lower() == "off":
            return None
        start, _, end = self.quiet_hours.partition("-")
        return QuietHours.parse(start, end)

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> NotifyConfig:
        env = os.environ.get
        config = cls(
            smtp_host=env("RAPPORT_SMTP_HOST", cls.smtp_host),
            smtp_port=int(env("RAPPORT_SMTP_PORT", str(cls.smtp_port))),
            smtp_user=env("RAPPORT_SMTP_USER") or None,
            smtp_password=env("RAPPORT_SMTP_PASSWORD") or None,
            smtp_starttls=env("RAPPORT_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            mail_from=env("RAPPORT_MAIL_FROM", cls.mail_from),
            sms_url=env("RAPPORT_SMS_URL", cls.sms_url),
            lead_email=env("RAPPORT_CLINICAL_LEAD_EMAIL", cls.lead_email),
            quiet_hours=env("RAPPORT_QUIET_HOURS", cls.quiet_hours),
            max_attempts=int(env("RAPPORT_NOTIFY_MAX_ATTEMPTS", str(cls.max_attempts))),
            backoff_seconds=float(env("RAPPORT_NOTIFY_BACKOFF_SECONDS", str(cls.backoff_seconds))),
            poll_seconds=float(env("RAPPORT_NOTIFY_POLL_SECONDS", str(cls.poll_seconds))),
            idle_rest_seconds=float(
                env("RAPPORT_NOTIFY_IDLE_REST_SECONDS", str(cls.idle_rest_seconds))
            ),
            payment_terms_days=int(env("RAPPORT_PAYMENT_TERMS_DAYS", str(cls.payment_terms_days))),
            payment_instructions=env("RAPPORT_PAYMENT_INSTRUCTIONS", cls.payment_instructions),
            portal_url=env("RAPPORT_PORTAL_PUBLIC_URL")
            or env("RAPPORT_PORTAL_URL")
            or cls.portal_url,
        )
        if settings is not None:
            config = replace(
                config,
                practice_tz=settings.practice_tz,
                practice_name=settings.practice_name,
                measures_url=settings.service_urls.get("measures", cls.measures_url),
                scheduling_url=settings.service_urls.get("scheduling", cls.scheduling_url),
                records_url=settings.service_urls.get("records", cls.records_url),
                billing_url=settings.service_urls.get("billing", cls.billing_url),
                token_secret=settings.token_secret,
            )
            overrides = (settings.extra or {}).get("notifications", {})
            known = {f.name for f in fields(cls)}
            config = replace(config, **{k: v for k, v in overrides.items() if k in known})
        return config
