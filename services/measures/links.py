"""Questionnaire links: single-use, expiring tokens. A token is a credential, so only its
SHA-256 is stored (architecture.md: secrets are not events) and it never enters an event.
Attempts are rate-limited per client IP with a fixed window counted in MongoDB."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pymongo import IndexModel, ReturnDocument

from shared.domain import Conflict

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

    def issue(self, request_id: str, client_id: str, request_expires_at: datetime,
              now: datetime) -> tuple[str, datetime]:
        """A fresh token for the request; any earlier one stops working."""
        self.links.update_many({"request_id": request_id, "revoked_at": None},
                               {"$set": {"revoked_at": now}})
        token = secrets.token_urlsafe(32)
        expires_at = min(request_expires_at, now + LINK_LIFETIME)
        self.links.insert_one({"_id": token_hash(token), "request_id": request_id,
                               "client_id": client_id, "issued_at": now,
                               "expires_at": expires_at, "used_at": None, "revoked_at": None})
        return token, expires_at

    def usable(self, token: str, now: datetime) -> tuple[dict | None, int]:
        """(link, 200) or (None, 404 unknown / 410 used, revoked or expired)."""
        if not token or len(token) > 100:
            return None, 404
        link = self.links.find_one({"_id": token_hash(token)})
        if link is None:
            return None, 404
        if link["used_at"] or link["revoked_at"] or link["expires_at"] <= now:
            return None, 410
        return link, 200

    def use(self, link_id: str, now: datetime):
        """For `append(..., also=...)`: claim the link in the completion's transaction, so
        two submissions racing each other complete the questionnaire once."""
        def claim(session) -> None:
            result = self.links.update_one({"_id": link_id, "used_at": None, "revoked_at": None},
                                           {"$set": {"used_at": now}}, session=session)
            if result.matched_count != 1:
                raise Conflict("this link has already been used")
        return claim

    def latest(self, request_ids: list[str]) -> dict[str, dict]:
        """{request_id: the newest link's issue and use times} (no hashes leave this module)."""
        out: dict[str, dict] = {}
        for link in self.links.find({"request_id": {"$in": request_ids}}).sort("issued_at", 1):
            out[link["request_id"]] = {"link_issued_at": link["issued_at"],
                                       "link_expires_at": link["expires_at"],
                                       "link_used_at": link["used_at"]}
        return out

    def allow(self, ip: str, now: datetime, limit: int, window_seconds: int) -> bool:
        """Fixed window: at most `limit` attempts per IP per window."""
        start = int(now.timestamp()) // window_seconds * window_seconds
        doc = self.attempts.find_one_and_update(
            {"_id": f"{ip}:{start}"},
            {"$inc": {"count": 1},
             "$setOnInsert": {"expires_at": now + timedelta(seconds=2 * window_seconds)}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return doc["count"] <= limit
