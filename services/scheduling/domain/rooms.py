"""Video rooms: every video session gets an unguessable room, and each participant a join
link of their own. Pure (no clock, no I/O): a room's name and its links follow from the
session and the practice's settings, so the deciders can state them on the events.

- A room's name is an HMAC of the session id and its start under a practice secret: nobody
  can guess it from the session id, and a session moved to another time gets another room
  (the old links lead to a room nobody else is given again).
- `JitsiRooms` (the documented default): a self-hosted Jitsi Meet with JWT authentication
  (prosody `authentication = "token"`, `app_id`/`app_secret`). One token per participant,
  HS256 under the app secret, with the claims of the Jitsi token specification
  (jitsi/lib-jitsi-meet, doc/tokens.md "Token structure"): `aud`, `iss` (the app id), `sub`
  (the Jitsi domain or tenant), `room`, `context.user` {id, name, moderator}, `nbf` and
  `exp`. A token is valid from 10 minutes before the session starts until it ends, so a link
  in an old message cannot open the room another day.
- `UrlRooms`: for practices that use another video service; the link is `<base>/<room>`.

Revoking: a cancelled session's room is dropped from the session (and its links from every
view), and the room is never handed out again. A Jitsi token cannot be recalled before its
`exp`, but it is bound to that one room and time; a plain URL is as strong as the service
behind it makes it."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote

import jwt

EARLY = timedelta(minutes=10)  # the waiting room opens 10 minutes before the start


@dataclass(frozen=True)
class Participant:
    id: str
    name: str
    moderator: bool = False


def room_name(secret: str, session_id: str, starts_at: datetime) -> str:
    """26 base32 characters (130 bits) of HMAC-SHA256: unguessable, lowercase for Jitsi."""
    mac = hmac.new(secret.encode(), f"{session_id}|{starts_at.isoformat()}".encode(), "sha256")
    return base64.b32encode(mac.digest()).decode().lower()[:26]


class RoomProvider(Protocol):
    def room_for(self, session_id: str, starts_at: datetime) -> str: ...

    def join_url(
        self, room: str, who: Participant, starts_at: datetime, ends_at: datetime
    ) -> str: ...


@dataclass(frozen=True)
class UrlRooms:
    """Another service's rooms at `<base_url>/<room>` (the same link for everyone)."""

    base_url: str
    room_secret: str

    def room_for(self, session_id: str, starts_at: datetime) -> str:
        return room_name(self.room_secret, session_id, starts_at)

    def join_url(self, room: str, who: Participant, starts_at: datetime, ends_at: datetime) -> str:
        return f"{self.base_url.rstrip('/')}/{room}"


@dataclass(frozen=True)
class JitsiRooms:
    """A self-hosted Jitsi Meet at `base_url` (e.g. https://meet.practice.example) checking
    JWTs signed with `app_secret` for the app `app_id`."""

    base_url: str
    app_id: str
    app_secret: str
    room_secret: str
    subject: str = ""  # the Jitsi domain or tenant; empty = the host of base_url
    audience: str = "jitsi"

    @property
    def sub(self) -> str:
        return self.subject or self.base_url.split("://", 1)[-1].split("/", 1)[0]

    def room_for(self, session_id: str, starts_at: datetime) -> str:
        return room_name(self.room_secret, session_id, starts_at)

    def claims(self, room: str, who: Participant, starts_at: datetime, ends_at: datetime) -> dict:
        return {
            "aud": self.audience,
            "iss": self.app_id,
            "sub": self.sub,
            "room": room,
            "nbf": int((starts_at - EARLY).timestamp()),
            "exp": int(ends_at.timestamp()),
            "context": {"user": {"id": who.id, "name": who.name, "moderator": who.moderator}},
        }

    def token(self, room: str, who: Participant, starts_at: datetime, ends_at: datetime) -> str:
        payload = self.claims(room, who, starts_at, ends_at)
        return jwt.encode(payload, self.app_secret, algorithm="HS256")

    def join_url(self, room: str, who: Participant, starts_at: datetime, ends_at: datetime) -> str:
        token = self.token(room, who, starts_at, ends_at)
        return f"{self.base_url.rstrip('/')}/{room}?jwt={quote(token)}"


@dataclass(frozen=True)
class VideoRooms:
    """The provider with what a decider needs to state a session's room for its client."""

    provider: RoomProvider
    client_name: str = "Client"

    def facts(
        self,
        *,
        session_id: str,
        client_id: str,
        modality: str,
        starts_at: datetime,
        ends_at: datetime,
    ) -> dict:
        """`video_room` and the client's `video_link` for a session (both None unless it is
        by video). The therapist's own link is made when they read the session."""
        if modality != "video":
            return {"video_room": None, "video_link": None}
        room = self.provider.room_for(session_id, starts_at)
        client = Participant(client_id, self.client_name)
        return {
            "video_room": room,
            "video_link": self.provider.join_url(room, client, starts_at, ends_at),
        }


def therapist_link(
    provider: RoomProvider, facts: dict, therapist_id: str, therapist_name: str
) -> str | None:
    """The therapist's (moderator's) link to a booked session's room, or None."""
    room = facts.get("video_room")
    if not room or facts.get("modality") != "video":
        return None
    who = Participant(therapist_id, therapist_name, moderator=True)
    return provider.join_url(room, who, facts["starts_at"], facts["ends_at"])
