"""Delivery channels: email over SMTP (smtplib), SMS through a provider's HTTP API (JSON
POST), and the staff inbox (a MongoDB collection). Each raises `TransientError` for what
may pass (server down, timeouts, 4xx SMTP replies, HTTP 5xx/429) and `PermanentError` for
what will not (5xx SMTP replies, HTTP 4xx): the dispatcher retries only the first. Before
anything is sent, a message may turn out `Voided` (it must not go) or `Deferred` (not yet)."""

from __future__ import annotations

import hashlib
import smtplib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

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


# A message's body goes as it is written (8bit) when no line is longer than SMTP allows
# (RFC 5321 4.5.3.1.6: 998 octets and the line's end), quoted-printable otherwise.
_AS_WRITTEN = Charset("utf-8")
_AS_WRITTEN.body_encoding = None
_QUOTED = Charset("utf-8")
_QUOTED.body_encoding = QP
LONGEST_LINE = 998


def _body_charset(body: str) -> Charset:
    longest = max((len(line.encode()) for line in body.splitlines()), default=0)
    return _AS_WRITTEN if longest <= LONGEST_LINE else _QUOTED


def _header(value: str) -> str | Header:
    """A header's text: as it is when ASCII, else an RFC 2047 encoded word."""
    return value if value.isascii() else Header(value, "utf-8")


def _address(value: str) -> str:
    """An address header: a display name outside ASCII encoded (RFC 2047), the address kept."""
    name, address = parseaddr(value)
    if not name or name.isascii() or not address:
        return value
    return formataddr((name, address), charset="utf-8")


class EmailChannel:
    """E-mail over SMTP. Each sender thread keeps its connection to the server open for its
    next message, while it is fresh (KEEP_IDLE), instead of a connection per message: the
    connection, the greeting, EHLO and QUIT were four of a message's seven exchanges with
    the server, and on a relay with STARTTLS and a login each message paid a TLS handshake
    and a login too. (Against the local sink the flows' latencies did not move: notifications'
    consumer spent 0.2 ms a tick less, bench/README.md, session 31.) A kept connection the
    server has closed or turned away (421) meanwhile is dropped and the message goes once on
    a new one: the server had not accepted it, and were it ever to have (a close after the
    message's end and before its reply), the resend carries the same Message-ID, as a retry
    always has. Any other failure drops the connection too."""

    # seconds a connection is kept unused: well within the five minutes a server waits
    # before it may close an idle one (RFC 5321 4.5.3.2.7)
    KEEP_IDLE = 30.0

    def __init__(self, config: NotifyConfig):
        self.config = config
        self._local = threading.local()  # this thread's kept connection
        self._open: set[smtplib.SMTP] = set()  # every thread's, for `close`
        self._lock = threading.Lock()

    def build(self, key: str, to: str, rendered: Rendered, attachments: Sequence = ()) -> Message:
        """The message, made with the email package's MIME classes (its compat32 policy).
        Made as an EmailMessage, each header was parsed through the header registry of the
        package's newer policy: 0.74 ms of CPU a message, built and flattened, against 0.18
        ms, and building mail was 9 % of notifications' consumer's CPU in the flows bench
        (py-spy, issue 14)."""
        text = MIMEText(rendered.body, "plain", _body_charset(rendered.body))
        msg: Message = text
        if attachments:  # e.g. an invoice's PDF (workers/invoices.py Attachment)
            msg = MIMEMultipart("mixed")
            msg.attach(text)
            for a in attachments:
                part = MIMEBase(a.maintype, a.subtype)
                part.set_payload(a.content)
                encoders.encode_base64(part)
                part.add_header("Content-Disposition", "attachment", filename=a.filename)
                msg.attach(part)
        msg["From"] = _address(self.config.mail_from)
        msg["To"] = _address(to)
        msg["Subject"] = _header(rendered.subject)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id(key)
        # lets a receiving system see the same notification twice without reading it
        msg["X-Rapport-Notification"] = hashlib.sha256(key.encode()).hexdigest()[:40]
        return msg

    def send(self, key: str, to: str, rendered: Rendered, attachments: Sequence = ()) -> None:
        message = self.build(key, to, rendered, attachments)
        try:
            kept = self._kept()
            if kept is not None:
                try:
                    refused = kept.send_message(message)
                except smtplib.SMTPServerDisconnected:
                    self._drop(kept)
                    kept = None
                except smtplib.SMTPSenderRefused as err:
                    self._drop(kept)
                    if err.smtp_code != 421:  # 421: the server is closing the connection
                        raise
                    kept = None
            if kept is None:
                kept = self._connect()
                refused = kept.send_message(message)
            self._local.used = time.monotonic()
        except smtplib.SMTPResponseException as err:
            self._drop_own()
            self._raise_for(err.smtp_code, err.smtp_error)
        except smtplib.SMTPRecipientsRefused as err:
            self._drop_own()
            code, text = next(iter(err.recipients.values()))
            self._raise_for(code, text)
        except (TimeoutError, smtplib.SMTPException, OSError) as err:
            self._drop_own()
            raise TransientError(f"smtp: {type(err).__name__}: {err}") from err
        if refused:
            code, text = next(iter(refused.values()))
            self._raise_for(code, text)

    def _kept(self) -> smtplib.SMTP | None:
        """This thread's connection, if it is fresh."""
        kept = getattr(self._local, "smtp", None)
        if kept is None:
            return None
        if time.monotonic() - getattr(self._local, "used", 0.0) > self.KEEP_IDLE:
            self._drop(kept)
            return None
        return kept

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout)
        try:
            if c.smtp_starttls:
                smtp.starttls()
            if c.smtp_user:
                smtp.login(c.smtp_user, c.smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        self._local.smtp = smtp
        with self._lock:
            self._open.add(smtp)
        return smtp

    def _drop_own(self) -> None:
        kept = getattr(self._local, "smtp", None)
        if kept is not None:
            self._drop(kept)

    def _drop(self, smtp: smtplib.SMTP) -> None:
        """Close `smtp` without a word to the server (it may be gone)."""
        if getattr(self._local, "smtp", None) is smtp:
            self._local.smtp = None
        with self._lock:
            self._open.discard(smtp)
        smtp.close()

    def close(self) -> None:
        """Say goodbye on every connection kept (the dispatcher stopping)."""
        with self._lock:
            kept, self._open = list(self._open), set()
        for smtp in kept:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

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
