"""Video rooms across scheduling and notifications on the real broker and store, with a real
SMTP server: a telephone session changed to video gets a room, and the client's own link (a
Jitsi token for them, not the therapist's) arrives by e-mail; the therapist sees their own
moderator link on the session; a cancelled session's room is revoked."""

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import jwt
import pytest

from testkit.plugin import eventually

LONDON = ZoneInfo("Europe/London")
SECRET = "jitsi-secret-of-the-integration-test-0123456789"


@pytest.fixture(autouse=True)
def jitsi(monkeypatch):
    monkeypatch.setenv("RAPPORT_VIDEO_PROVIDER", "jitsi")
    monkeypatch.setenv("RAPPORT_JITSI_URL", "https://meet.practice.test")
    monkeypatch.setenv("RAPPORT_JITSI_APP_ID", "rapport-practice")
    monkeypatch.setenv("RAPPORT_JITSI_APP_SECRET", SECRET)


def _text(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return f"{message['Subject']}\n{part.get_content() if part else ''}"


def _decode(link: str) -> dict:
    token = parse_qs(urlsplit(link).query)["jwt"][0]
    return jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        issuer="rapport-practice",
        options={"verify_nbf": False},  # the session is days ahead: its door is not open yet
    )


def _setup(practice, auth_header):
    sched, records = practice["scheduling"], practice["records"]
    lead, reception = auth_header("clinical_lead"), auth_header("admin")
    r = sched.post(
        "/therapists",
        headers=lead,
        json={
            "name": "Dr Sarah Okafor",
            "email": "sarah@practice.test",
            "modalities": ["video", "telephone"],
            "rooms": [],
        },
    )
    assert r.status_code == 201, r.json
    tid = r.json["therapist_id"]
    hours = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    r = sched.put(
        f"/therapists/{tid}/availability",
        headers=lead,
        json={"weekly_hours": hours, "exceptions": []},
    )
    assert r.status_code == 200, r.json
    r = records.post(
        "/clients",
        headers=reception,
        json={
            "given_name": "John",
            "family_name": "Hartley",
            "date_of_birth": "1957-05-02",
            "email": "john@client.test",
            "preferred_modality": "telephone",
            "reminder_channels": ["email"],
            "therapist_id": tid,
            "referral_source": "GP",
        },
    )
    assert r.status_code == 201, r.json
    return tid, r.json["client_id"]


def test_a_session_changed_to_video_sends_the_client_their_own_room_link(practice, auth_header):
    sched, mail = practice["scheduling"], practice["mail"]
    tid, cid = _setup(practice, auth_header)
    reception, therapist = auth_header("admin"), auth_header("therapist", therapist_id=tid)
    day = (datetime.now(LONDON) + timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=LONDON)
    booking = {
        "client_id": cid,
        "therapist_id": tid,
        "kind": "treatment",
        "modality": "telephone",
        "starts_at": start.isoformat(),
    }
    r = eventually(
        lambda: (lambda resp: resp if resp.status_code == 201 else None)(
            sched.post("/sessions", headers=reception, json=booking)
        ),
        timeout=90,
        message="client known to scheduling",
    )
    sid = r.json["session_id"]
    assert r.json["video_link"] is None

    moved = start + timedelta(hours=2)
    r = sched.post(
        f"/sessions/{sid}/reschedule",
        headers=therapist,
        json={"starts_at": moved.isoformat(), "modality": "video"},
    )
    assert r.status_code == 200, r.json
    mine = r.json["video_link"]
    assert mine and _decode(mine)["context"]["user"]["moderator"] is True

    def joining_link():
        for message in mail.to("john@client.test"):
            found = re.findall(r"https://meet\.practice\.test/\S+", _text(message))
            if found and "moved" in message["Subject"]:
                return found[0]
        return None

    link = eventually(joining_link, timeout=90, message="the moved notice with the link")
    client = _decode(link)
    assert client["aud"] == "jitsi" and client["iss"] == "rapport-practice"
    assert client["sub"] == "meet.practice.test"
    assert client["context"]["user"] == {"id": cid, "name": "John", "moderator": False}
    assert client["nbf"] == int((moved - timedelta(minutes=10)).timestamp())
    assert client["exp"] == int((moved + timedelta(minutes=50)).timestamp())
    assert link.startswith(f"https://meet.practice.test/{client['room']}?jwt=")

    # the therapist's page: their own moderator link to the same room; reception gets none,
    # and no staff view carries the client's link
    seen = sched.get(f"/sessions/{sid}", headers=therapist).json
    assert _decode(seen["video_link"])["room"] == client["room"]
    assert _decode(seen["video_link"])["context"]["user"]["id"] == tid
    assert sched.get(f"/sessions/{sid}", headers=reception).json["video_link"] is None
    token = parse_qs(urlsplit(link).query)["jwt"][0]
    for path in (f"/sessions/{sid}", f"/clients/{cid}/sessions"):
        for who in (therapist, reception):
            assert token not in sched.get(path, headers=who).get_data(as_text=True)

    r = sched.post(
        f"/sessions/{sid}/cancel", headers=therapist, json={"by": "client", "reason": "unwell"}
    )
    assert r.status_code == 200, r.json
    assert sched.get(f"/sessions/{sid}", headers=therapist).json["video_link"] is None
