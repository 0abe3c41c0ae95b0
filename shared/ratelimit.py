"""Fixed-window attempt counters in MongoDB, for the public pages (the questionnaire link,
the enquiry form, the booking link): at most `limit` attempts per key per window. Counted
atomically in the store, so every process behind the load balancer shares one count; a key
names what is limited (`ip:<address>`, `link:<hash>`, `contact:<hash>`) and never holds a
credential or a contact detail in clear."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import IndexModel
from pymongo.collection import Collection

from .mongo import count_by_id


class FixedWindow:
    def __init__(self, attempts: Collection):
        self.attempts = attempts

    def ensure_indexes(self) -> None:
        self.attempts.create_indexes([IndexModel("expires_at", expireAfterSeconds=0)])

    def allow(self, key: str, now: datetime, limit: int, window_seconds: int) -> bool:
        start = int(now.timestamp()) // window_seconds * window_seconds
        doc = count_by_id(
            self.attempts,
            f"{key}:{start}",
            {
                "$inc": {"count": 1},
                "$setOnInsert": {"expires_at": now + timedelta(seconds=2 * window_seconds)},
            },
        )
        return doc["count"] <= limit
