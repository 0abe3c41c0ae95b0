"""The one place that talks to measures: a fresh questionnaire link, fetched at send time
with a short-lived service token. The link is a credential — it is returned to the caller
for the message body and never stored, logged or put in an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests

from shared.auth import service_token

from .channels import PermanentError, TransientError


class LinkGone(Exception):
    """The request was withdrawn, completed or has expired: nothing to send."""


@dataclass(frozen=True)
class QuestionnaireLink:
    url: str
    expires_at: datetime

    def __repr__(self) -> str:  # keep the credential out of tracebacks and logs
        return f"QuestionnaireLink(expires_at={self.expires_at.isoformat()})"


class MeasuresLinks:
    def __init__(
        self,
        base_url: str,
        token_secret: str,
        timeout: float = 5.0,
        http: requests.Session | None = None,
    ):
        self.base_url, self.secret, self.timeout = base_url.rstrip("/"), token_secret, timeout
        self.http = http or requests.Session()

    def fetch(self, request_id: str) -> QuestionnaireLink:
        token = service_token(self.secret, "notifications", ttl_seconds=60)
        try:
            response = self.http.post(
                f"{self.base_url}/questionnaire-requests/{request_id}/link",
                headers={"Authorization": f"Bearer {token}"},
                json={},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise TransientError(f"measures unreachable: {type(err).__name__}") from err
        if response.status_code in (404, 409, 410):
            raise LinkGone(f"measures answered {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"measures answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"measures refused the link request: {response.status_code}")
        try:
            body = response.json()
            return QuestionnaireLink(body["url"], datetime.fromisoformat(body["expires_at"]))
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError("measures sent an unreadable link response") from err


class SchedulingLinks:
    """A fresh token for a booking link (scheduling `POST /booking-links/{id}/token`), or for
    a client's own link to one session (`resource="session-links"`, page `my-session`),
    fetched at send time like a questionnaire link; the URL is the portal's public page."""

    def __init__(
        self,
        base_url: str,
        portal_url: str,
        token_secret: str,
        timeout: float = 5.0,
        *,
        resource: str = "booking-links",
        page: str = "book-online",
    ):
        self.base_url, self.portal_url = base_url.rstrip("/"), portal_url.rstrip("/")
        self.secret, self.timeout = token_secret, timeout
        self.resource, self.page = resource, page
        self.http = requests.Session()

    def fetch(self, link_id: str) -> QuestionnaireLink:
        token = service_token(self.secret, "notifications", ttl_seconds=60)
        try:
            response = self.http.post(
                f"{self.base_url}/{self.resource}/{link_id}/token",
                headers={"Authorization": f"Bearer {token}"},
                json={},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise TransientError(f"scheduling unreachable: {type(err).__name__}") from err
        if response.status_code in (404, 409, 410):
            raise LinkGone(f"scheduling answered {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"scheduling answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"scheduling refused the link request: {response.status_code}")
        try:
            body = response.json()
            url = f"{self.portal_url}/{self.page}/{body['token']}"
            return QuestionnaireLink(url, datetime.fromisoformat(body["expires_at"]))
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError("scheduling sent an unreadable link response") from err


class HomeworkLinks:
    """The client's homework page link from records (issue 17: the task reminder carries it),
    fetched at send time like a questionnaire link: a credential, never stored or logged."""

    def __init__(self, records_url: str, portal_url: str, token_secret: str, timeout: float = 5.0):
        self.records_url, self.portal_url = records_url.rstrip("/"), portal_url.rstrip("/")
        self.secret, self.timeout = token_secret, timeout
        self.http = requests.Session()

    def fetch(self, client_id: str) -> QuestionnaireLink:
        token = service_token(self.secret, "notifications", ttl_seconds=60)
        try:
            response = self.http.post(
                f"{self.records_url}/clients/{client_id}/homework-links",
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise TransientError(f"records unreachable: {type(err).__name__}") from err
        if response.status_code in (404, 409):
            raise LinkGone(f"records answered {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"records answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"records refused the link request: {response.status_code}")
        try:
            body = response.json()
            expires = datetime.fromisoformat(body["expires_at"])
            return QuestionnaireLink(f"{self.portal_url}{body['path']}", expires)
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError("records sent an unreadable link response") from err
