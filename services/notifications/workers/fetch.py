"""A call to another service at send time, with a short-lived service token, and what its
answer means for the message: the thing asked for is gone (the message is voided), the
service is down or busy (retry later) or it refused (the message fails for good). Links and
invoices (links.py, invoices.py) are fetched this way and never stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests

from shared.auth import service_token

from .channels import PermanentError, TransientError

T = TypeVar("T")


class ServiceCall:
    """One other service, reached at `base_url` as the notifications service."""

    def __init__(
        self,
        service: str,
        base_url: str,
        token_secret: str,
        timeout: float,
        http: requests.Session | None = None,
    ):
        self.service, self.base_url = service, base_url.rstrip("/")
        self.secret, self.timeout = token_secret, timeout
        self.http = http or requests.Session()

    def call(
        self,
        method: str,
        path: str,
        *,
        gone: tuple[int, ...],
        gone_error: type[Exception],
        what: str,
        headers: dict | None = None,
        **kwargs,
    ) -> requests.Response:
        """The successful answer to `method path`; a status in `gone` raises `gone_error`,
        429 and 5xx (and no answer at all) TransientError, any other 4xx PermanentError."""
        token = service_token(self.secret, "notifications", ttl_seconds=60)
        try:
            response = self.http.request(
                method,
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
                timeout=self.timeout,
                **kwargs,
            )
        except requests.RequestException as err:
            raise TransientError(f"{self.service} unreachable: {type(err).__name__}") from err
        status = response.status_code
        if status in gone:
            raise gone_error(f"{self.service} answered {status}")
        if status >= 500 or status == 429:
            raise TransientError(f"{self.service} answered {status}")
        if status >= 400:
            raise PermanentError(f"{self.service} refused the {what} request: {status}")
        return response

    def read(self, response: requests.Response, what: str, build: Callable[[dict], T]) -> T:
        """`build` applied to the JSON body; a body without what it needs is worth another
        try later (a deploy in progress), not a crash of the dispatcher."""
        try:
            return build(response.json())
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError(f"{self.service} sent an unreadable {what} response") from err
