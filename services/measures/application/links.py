"""Questionnaire links: expiring tokens, one per message sent. A token is a credential, so
only its SHA-256 is stored (architecture.md: secrets are not events) and it never enters an
event or a log line.

A request may be sent on several channels (e-mail and SMS) and resent by staff: each send
gets its own token, and every token of a request keeps working until the request is
completed (by any of them), withdrawn or expired. Issuing a new token never revokes an
earlier one, so the e-mail's link does not die when the SMS goes out.

Attempts are rate-limited with fixed windows counted in MongoDB, per client address and per
link (behind an ingress many clients may share an address)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pymongo import IndexModel

from shared.domain import Conflict
from shared.ratelimit import FixedWindow

LINK_LIFETIME = timedelta(days=7)  # at most; never beyond the end of the session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Links:
    def __init__(self, db):
        self.links = db["questionnaire_links"]
        self.attempts = db["link_attempts"]

    def ensure_indexes(self) -> None:
        self.links.create_indexes([IndexModel("request_id")])
        self.attempts.create_indexes([IndexModel("expires_at", expireAfterSeconds=0)])

    def issue(
        self, request_id: str, client_id: str, request_expires_at: datetime, now: datetime
    ) -> tuple[str, datetime]:
        """A fresh token for one message of the request; earlier ones keep working."""
        token = secrets.token_urlsafe(32)
        expires_at = min(request_expires_at, now + LINK_LIFETIME)
        self.links.insert_one(
            {
                "_id": token_hash(token),
                "request_id": request_id,
                "client_id": client_id,
                "issued_at": now,
                "expires_at": expires_at,
                "used_at": None,
                "revoked_at": None,
            }
        )
        return token, expires_at

    def usable(self, token: str, now: datetime) -> dict | None:
        """The link, or None when it is unknown, used, revoked or expired: the caller answers
        all of those alike, so a guessed link cannot be told from a used one."""
        if not token or len(token) > 100:
            return None
        link = self.links.find_one({"_id": token_hash(token)})
        if link is None or link["used_at"] or link["revoked_at"] or link["expires_at"] <= now:
            return None
        return link

    def use(self, link_id: str, now: datetime):
        """For `append(..., also=...)`: claim the link in the completion's transaction, so
        two submissions racing each other complete the questionnaire once."""

        def claim(session) -> None:
            result = self.links.update_one(
                {"_id": link_id, "used_at": None, "revoked_at": None},
                {"$set": {"used_at": now}},
                session=session,
            )
            if result.matched_count != 1:
                raise Conflict("this link has already been used")

        return claim

    def latest(self, request_ids: list[str]) -> dict[str, dict]:
        """{request_id: the newest link's issue and use times} (no hashes leave this module)."""
        out: dict[str, dict] = {}
        for link in self.links.find({"request_id": {"$in": request_ids}}).sort("issued_at", 1):
            out[link["request_id"]] = {
                "link_issued_at": link["issued_at"],
                "link_expires_at": link["expires_at"],
                "link_used_at": link["used_at"],
            }
        return out

    def allow(self, key: str, now: datetime, limit: int, window_seconds: int) -> bool:
        """Fixed window: at most `limit` attempts per key (`ip:<address>` or `link:<hash>`)
        per window."""
        return FixedWindow(self.attempts).allow(key, now, limit, window_seconds)
