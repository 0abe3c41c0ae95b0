"""The links a message carries, fetched at send time from the service that issues them
(fetch.py): a questionnaire link from measures, a booking link's token from scheduling, the
client's homework page from records. A link is a credential — it is returned to the caller
for the message body and never stored, logged or put in an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests

from .fetch import ServiceCall


class LinkGone(Exception):
    """The request was withdrawn, completed or has expired: nothing to send."""


@dataclass(frozen=True)
class QuestionnaireLink:
    url: str
    expires_at: datetime

    def __repr__(self) -> str:  # keep the credential out of tracebacks and logs
        return f"QuestionnaireLink(expires_at={self.expires_at.isoformat()})"


def _fetch(
    service: ServiceCall, path: str, url_of, gone=(404, 409, 410), **request
) -> QuestionnaireLink:
    """`POST path` for a fresh link; `url_of(body)` is the URL the person opens."""
    response = service.call("POST", path, gone=gone, gone_error=LinkGone, what="link", **request)
    return service.read(
        response,
        "link",
        lambda body: QuestionnaireLink(url_of(body), datetime.fromisoformat(body["expires_at"])),
    )


class MeasuresLinks:
    def __init__(
        self,
        base_url: str,
        token_secret: str,
        timeout: float = 5.0,
        http: requests.Session | None = None,
    ):
        self.measures = ServiceCall("measures", base_url, token_secret, timeout, http)

    def fetch(self, request_id: str) -> QuestionnaireLink:
        path = f"/questionnaire-requests/{request_id}/link"
        return _fetch(self.measures, path, lambda body: body["url"], json={})


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
        self.scheduling = ServiceCall("scheduling", base_url, token_secret, timeout)
        self.portal_url = portal_url.rstrip("/")
        self.resource, self.page = resource, page

    def fetch(self, link_id: str) -> QuestionnaireLink:
        path, url = f"/{self.resource}/{link_id}/token", f"{self.portal_url}/{self.page}"
        return _fetch(self.scheduling, path, lambda b: f"{url}/{b['token']}", json={})


class HomeworkLinks:
    """The client's homework page link from records (issue 17: the task reminder carries it),
    fetched at send time like a questionnaire link: a credential, never stored or logged."""

    def __init__(self, records_url: str, portal_url: str, token_secret: str, timeout: float = 5.0):
        self.records = ServiceCall("records", records_url, token_secret, timeout)
        self.portal_url = portal_url.rstrip("/")

    def fetch(self, client_id: str) -> QuestionnaireLink:
        path, portal = f"/clients/{client_id}/homework-links", self.portal_url
        return _fetch(self.records, path, lambda body: f"{portal}{body['path']}", gone=(404, 409))
