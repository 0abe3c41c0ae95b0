"""Delivery channels: email over SMTP (smtplib), SMS through a provider's HTTP API (JSON
POST), and the staff inbox (a MongoDB collection). Each raises `TransientError` for what
may pass (server down, timeouts, 4xx SMTP replies, HTTP 5xx/429) and `PermanentError` for
what will not (5xx SMTP replies, HTTP 4xx): the dispatcher retries only the first. Before
anything is sent, a message may turn out `Voided` (it must not go) or `Deferred` (not yet)."""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import requests

from ..application.config import NotifyConfig
from ..domain import message_id


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    pass


class PermanentError(DeliveryError):
    pass


class Voided(Exception):
    """The message must not go after all (reason in args[0])."""


class Deferred(Exception):
    """Not now (the recipient's quiet hours): the message waits until `until`."""

    def __init__(self, until):
        super().__init__(f"deferred until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class EmailChannel:
    def __init__(self, config: NotifyConfig):
        self.config = config

    def build(
        self, key: str, to: str, rendered: Rendered, attachments: Sequence = ()
    ) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.mail_from
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id(key)
        # lets a receiving system see the same notification twice without reading it
        msg["X-Rapport-Notification"] = hashlib.sha256(key.encode()).hexdigest()[:40]
        msg.set_content(rendered.body)
        for a in attachments:  # e.g. an invoice's PDF (workers/invoices.py Attachment)
            msg.add_attachment(
                a.content, maintype=a.maintype, subtype=a.subtype, filename=a.filename
            )
        return msg

    def send(self, key: str, to: str, rendered: Rendered, attachments: Sequence = ()) -> None:
        c = self.config
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout) as smtp:
                if c.smtp_starttls:
                    smtp.starttls()
                if c.smtp_user:
                    smtp.login(c.smtp_user, c.smtp_password or "")
                refused = smtp.send_message(self.build(key, to, rendered, attachments))
        except smtplib.SMTPResponseException as err:
            self._raise_for(err.smtp_code, err.smtp_error)
        except smtplib.SMTPRecipientsRefused as err:
            code, text = next(iter(err.recipients.values()))
            self._raise_for(code, text)
        except (TimeoutError, smtplib.SMTPException, OSError) as err:
            raise TransientError(f"smtp: {type(err).__name__}: {err}") from err
        if refused:
            code, text = next(iter(refused.values()))
            self._raise_for(code, text)

    @staticmethod
    def _raise_for(code: int, text) -> None:
        detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        if 500 <= code < 600:
            raise PermanentError(f"smtp {code}: {detail}")
        raise TransientError(f"smtp {code}: {detail}")


class SmsChannel:
    """A provider adapter: `POST {sms_url}` with `{"to", "body", "reference"}` and an
    `Idempotency-Key` header (the hashed notification key), so a provider that honours it
    drops a resend after a crash."""

    def __init__(self, config: NotifyConfig, http: requests.Session | None = None):
        self.config, self.http = config, http or requests.Session()

    def send(self, key: str, to: str, rendered: Rendered) -> None:
        reference = hashlib.sha256(key.encode()).hexdigest()[:40]
        try:
            response = self.http.post(
                self.config.sms_url,
                timeout=self.config.sms_timeout,
                json={"to": to, "body": rendered.body, "reference": reference},
                headers={"Idempotency-Key": reference},
            )
        except requests.RequestException as err:
            raise TransientError(f"sms: {type(err).__name__}") from err
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"sms provider answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"sms provider refused: {response.status_code}")
