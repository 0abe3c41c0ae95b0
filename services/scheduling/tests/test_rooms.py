"""Video rooms, given/when/then and the Jitsi tokens decoded with PyJWT (the claims of the
Jitsi token specification, jitsi/lib-jitsi-meet doc/tokens.md). No I/O; the provider itself
is not run."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from services.scheduling.domain.rooms import (
    JitsiRooms,
    Participant,
    UrlRooms,
    VideoRooms,
    room_name,
    therapist_link,
)
from services.scheduling.domain.session import (
    BookSession,
    CancelSession,
    RescheduleSession,
    Session,
)
from services.scheduling.domain.therapist import Therapist
from shared.domain import fold
from testkit.given import given

from .test_domain import NOW, booked, booking, hours, registered, utc

SECRET = "jitsi-app-secret-for-tests-only-0123456789"
JITSI = JitsiRooms(
    base_url="https://meet.practice.test",
    app_id="rapport",
    app_secret=SECRET,
    room_secret="room-secret",
)
ROOMS = VideoRooms(JITSI, "Emma")
START = utc(2026, 10, 5, 9, 0)


def therapist():
    modalities = ("video", "telephone", "face_to_face")
    return fold(Therapist(), [registered(modalities=modalities), hours()])


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["jwt"][0]


def claims(token: str, **options) -> dict:
    return jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        issuer="rapport",
        options={"verify_exp": False, "verify_nbf": False, **options},
    )


def test_a_video_session_is_booked_with_an_unguessable_room_and_the_clients_link():
    command = BookSession(booking(START), therapist(), "active", NOW, rooms=ROOMS)
    (event,) = given(Session()).when(command).then_types("SessionBooked")
    room = event.data["video_room"]
    assert room == room_name("room-secret", "s1", START) and len(room) == 26
    assert "s1" not in room and room.isalnum()
    link = event.data["video_link"]
    assert link.startswith(f"https://meet.practice.test/{room}?jwt=")
    got = claims(token_of(link))
    assert got == {
        "aud": "jitsi",
        "iss": "rapport",
        "sub": "meet.practice.test",
        "room": room,
        "nbf": int((START - timedelta(minutes=10)).timestamp()),
        "exp": int((START + timedelta(minutes=50)).timestamp()),
        "context": {"user": {"id": "c1", "name": "Emma", "moderator": False}},
    }


def test_sessions_not_by_video_get_no_room():
    command = BookSession(
        booking(START, modality="telephone"), therapist(), "active", NOW, rooms=ROOMS
    )
    (event,) = given(Session()).when(command).then_types("SessionBooked")
    assert event.data["video_room"] is None and event.data["video_link"] is None


def test_a_session_changed_from_telephone_to_video_gets_a_room_and_the_clients_link():
    phone = booked(modality="telephone", video_link=None, video_room=None)
    new = utc(2026, 10, 6, 13, 0)
    command = RescheduleSession(
        starts_at=new,
        therapist=therapist(),
        client_status="active",
        now=NOW,
        modality="video",
        rooms=ROOMS,
    )
    (event,) = given(Session(), [phone]).when(command).then_types("SessionRescheduled")
    assert event.data["video_room"] == room_name("room-secret", "s1", new)
    got = claims(token_of(event.data["video_link"]))
    assert got["room"] == event.data["video_room"]
    assert got["nbf"] == int((new - timedelta(minutes=10)).timestamp())


def test_a_moved_video_session_moves_to_a_new_room_and_one_moved_off_video_loses_it():
    first = VideoRooms(JITSI).facts(
        session_id="s1", client_id="c1", modality="video", starts_at=START, ends_at=START
    )
    state = fold(Session(), [booked(**first)])
    new = utc(2026, 10, 6, 13, 0)
    moved = Session().decide(
        state,
        RescheduleSession(
            starts_at=new, therapist=therapist(), client_status="active", now=NOW, rooms=ROOMS
        ),
    )[0]
    assert moved.data["video_room"] not in (None, first["video_room"])
    by_phone = Session().decide(
        state,
        RescheduleSession(
            starts_at=START,
            therapist=therapist(),
            client_status="active",
            now=NOW,
            modality="telephone",
            rooms=ROOMS,
        ),
    )[0]
    assert by_phone.data["video_room"] is None and by_phone.data["video_link"] is None
    after = Session().evolve(state, by_phone)
    assert after.facts["video_room"] is None and after.facts["video_link"] is None


def test_a_cancelled_sessions_room_is_revoked():
    facts = ROOMS.facts(
        session_id="s1", client_id="c1", modality="video", starts_at=START, ends_at=START
    )
    state = fold(Session(), [booked(**facts)])
    (event,) = Session().decide(state, CancelSession("client", "ill", NOW))
    after = Session().evolve(state, event)
    assert after.facts["video_room"] is None and after.facts["video_link"] is None
    assert therapist_link(JITSI, {**after.facts, "modality": "video"}, "t1", "Ann") is None


def test_the_therapists_token_is_their_own_and_makes_them_moderator():
    facts = {"video_room": "abc", "modality": "video", "starts_at": START, "ends_at": START}
    link = therapist_link(JITSI, {**facts, "ends_at": START + timedelta(minutes=50)}, "t1", "Ann")
    got = claims(token_of(link))
    assert got["context"]["user"] == {"id": "t1", "name": "Ann", "moderator": True}
    assert got["room"] == "abc"


def test_a_token_works_from_ten_minutes_before_the_start_until_the_end():
    now = datetime.now(UTC)
    room, who = "r", Participant("c1", "Emma")

    def token(start):
        return JITSI.token(room, who, start, start + timedelta(minutes=50))

    strict = {"verify_exp": True, "verify_nbf": True}
    assert claims(token(now + timedelta(minutes=9)), **strict)["room"] == room  # door open
    with pytest.raises(jwt.ImmatureSignatureError):
        claims(token(now + timedelta(minutes=11)), **strict)  # too early
    with pytest.raises(jwt.ExpiredSignatureError):
        claims(token(now - timedelta(minutes=51)), **strict)  # session over
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token(now), "another-secret-of-the-same-length-000000", ["HS256"], audience="jitsi"
        )


def test_the_plain_url_provider_gives_the_same_unguessable_room_to_everyone():
    rooms = UrlRooms("https://video.other.test/rooms/", "room-secret")
    room = rooms.room_for("s1", START)
    assert rooms.join_url(room, Participant("c1", "Emma"), START, START) == (
        f"https://video.other.test/rooms/{room}"
    )
    assert room != rooms.room_for("s2", START) and room != rooms.room_for("s1", utc(2026, 10, 6))
    assert room != UrlRooms("x", "another-secret").room_for("s1", START)
