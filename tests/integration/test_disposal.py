"""Erasure and disposal across the four services (UK GDPR Art. 9, Records Management Code of
Practice 2021): a request to erase inside the retention period is refused with the reason and
recorded; at the end of retention the record is disposed of (the client's key destroyed) and
afterwards no personal data is readable from any service's events, the Kafka topics
(re-consumed) or any collection — while the counts in the dashboards are unchanged."""

import json
import re
from datetime import UTC, datetime, timedelta

from kafka import TopicPartition

from shared import kafka as kafka_clients
from shared.mongo import client as mongo_client
from testkit.plugin import eventually

from .conftest import FOUR

SECRETS = (
    "Whitfield",
    "emma.w@client.test",
    "07700900456",
    "9434765919",
    "Dr Patel",
    "argues with Mark",
    "Mark Whitfield",
    "Share the chores",
    "overeating and poor sleep",
    "Felt heard this week",
    # free text that named people or circumstances (issue 15, High #1)
    "her sister Joan Whitfield",
    "moved after the divorce",
    "Joan acting for the client",
)
# clinical values without a telltale word: diagnoses, problem areas, scores, bands, the risk
# answer and the outcome categories. After disposal none of them may be left in clear.
CLINICAL = (
    r'"depression"',
    r'"role_dispute"',
    r'"total":\s*\d',
    r'"band":\s*"(?!\[disposed\])',
    r'"answer":\s*\d',
    r'"(first|last|change)":\s*-?\d',
    r'"phq9":\s*\d',
    r'"gad7":\s*\d',
    r'"(recovered|reliable_improvement|caseness_at_start)":\s*(true|false)',
    r"answered \d",
)


def _all_documents(settings) -> str:
    dumps = []
    for service in FOUR:  # each on its own store (notifications': Settings.mongo_uri_of)
        db = mongo_client(settings.mongo_uri_of(service))[settings.database(service)]
        for name in db.list_collection_names():
            dumps.append(json.dumps(list(db[name].find()), default=str))
    return "\n".join(dumps)


def _all_topics(settings) -> str:
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None)
    try:
        parts = [
            TopicPartition(settings.topic(s), p)
            for s in FOUR
            for p in sorted(consumer.partitions_for_topic(settings.topic(s)) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for recs in consumer.poll(timeout_ms=1000).values():
                out.extend(r.value.decode() for r in recs)
        return "\n".join(out)
    finally:
        consumer.close()


def test_erasure_refused_in_retention_then_disposal_forgets_everywhere(practice, auth_header):
    sched, records, measures = practice["scheduling"], practice["records"], practice["measures"]
    settings = practice["settings"]
    lead, reception = auth_header("clinical_lead"), auth_header("admin")
    tid = sched.post(
        "/therapists",
        headers=lead,
        json={"name": "Dr Sarah Okafor", "email": "sarah@practice.test", "modalities": ["video"]},
    ).json["therapist_id"]
    therapist = auth_header("therapist", therapist_id=tid)
    cid = records.post(
        "/clients",
        headers=reception,
        json={
            "given_name": "Emma",
            "family_name": "Whitfield",
            "date_of_birth": "1981-03-14",
            "email": "emma.w@client.test",
            "phone": "07700900456",
            "preferred_modality": "video",
            "reminder_channels": ["email"],
            "therapist_id": tid,
            "referral_source": "her sister Joan Whitfield",
            "gp": {"name": "Dr Patel", "practice": "Vinters Park"},
            "nhs_number": "9434765919",
        },
    ).json["client_id"]
    r = records.patch(
        f"/clients/{cid}",
        headers=reception,
        json={"reason": "moved after the divorce", "phone": "07700900457"},
    )
    assert r.status_code == 200, r.json
    assert (
        records.post(
            f"/clients/{cid}/assessment",
            headers=therapist,
            json={
                "presenting_difficulties": "Low mood, overeating and poor sleep since the new job",
                "conditions": ["depression"],
                "goals": ["Share the chores"],
                "risk_summary": "No current risk",
            },
        ).status_code
        == 201
    )
    r = records.put(
        f"/clients/{cid}/formulation",
        headers=therapist,
        json={
            "problem_areas": ["role_dispute"],
            "formulation": "Emma argues with Mark about help at home",
            "goals": ["Share the chores"],
            "inventory": [
                {
                    "name": "Mark Whitfield",
                    "relationship": "husband",
                    "closeness": 1,
                    "unilateral_partner": True,
                }
            ],
        },
    )
    assert r.status_code in (200, 201), r.json
    # a booking, so that notifications writes to the client (its messages hold the address)
    hours = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    sched.put(
        f"/therapists/{tid}/availability",
        headers=lead,
        json={"weekly_hours": hours, "exceptions": []},
    )
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    eventually(
        lambda: (
            sched.post(
                "/sessions",
                headers=reception,
                json={
                    "client_id": cid,
                    "therapist_id": tid,
                    "kind": "assessment",
                    "modality": "video",
                    "starts_at": starts.isoformat(),
                },
            ).status_code
            == 201
        ),
        timeout=90,
        message="session booked",
    )
    eventually(
        lambda: practice["mail"].to("emma.w@client.test"), timeout=90, message="confirmation sent"
    )

    # item 9 > 0 on the first form: a risk alert
    first = {"PHQ-9": [2, 2, 2, 2, 2, 2, 2, 1, 1], "GAD-7": [2, 2, 1, 1, 1, 1, 1]}
    last = {"PHQ-9": [1, 0, 1, 0, 1, 0, 1, 0, 0], "GAD-7": [0, 1, 0, 0, 1, 0, 0]}
    # measures learns of the client from records' events; until then it answers 404
    eventually(
        lambda: (
            measures.post(
                "/responses", headers=therapist, json={"client_id": cid, "answers": first}
            ).status_code
            == 201
        ),
        timeout=90,
    )
    assert (
        measures.post(
            "/responses", headers=therapist, json={"client_id": cid, "answers": last}
        ).status_code
        == 201
    )
    period = {"from": "2000-01-01", "to": "2099-12-31"}

    def trajectory_points():
        body = measures.get(f"/clients/{cid}/trajectory", headers=lead).json
        return json.dumps(body).count('"total"') >= 4

    eventually(trajectory_points, timeout=90, message="both measures in the trajectory")
    before = measures.get("/dashboards/practice", headers=lead, query_string=period).json

    # inside retention (still in treatment): refused with the reason, and recorded
    r = records.post(
        f"/clients/{cid}/erasure-requests",
        headers=lead,
        json={"requested_by": "Joan acting for the client", "request": "Please delete everything"},
    )
    assert (
        r.status_code == 409
        and "Art. 17(3)(c)" in r.json["detail"]
        and r.json["code"] == "retention"
    )
    history = records.get(f"/clients/{cid}/history", headers=lead).json
    assert "ErasureRefused" in json.dumps(history)
    assert records.post(f"/clients/{cid}/disposal", headers=lead).status_code == 409

    r = records.post(
        f"/clients/{cid}/discharge",
        headers=therapist,
        json={"reason": "course complete", "outcome_summary": "Felt heard this week; mood lifted"},
    )
    assert r.status_code in (200, 201), r.json
    r = records.post(f"/clients/{cid}/disposal", headers=lead)
    assert r.status_code == 409 and "retention period runs until" in r.json["detail"]

    # twenty years and a day after the end of treatment
    later = datetime.now(UTC) + timedelta(days=365 * 20 + 6)
    practice["apps"]["records"].config["RECORDS_CLOCK"] = lambda: later
    r = records.post(f"/clients/{cid}/disposal", headers=lead)
    assert r.status_code == 200 and r.json["status"] == "disposed", r.json
    assert (
        records.post(
            f"/clients/{cid}/notes", headers=therapist, json={"text": "x", "session_id": "s"}
        ).status_code
        == 409
    )

    def db(s):
        return mongo_client(settings.mongo_uri_of(s))[settings.database(s)]

    def swept():
        return all(
            db(s)[name].count_documents({"_id": cid, "done_at": {"$ne": None}})
            for s in FOUR
            for name in db(s).list_collection_names()
            if name.startswith("disposals__")
        )

    eventually(swept, timeout=120, message="every service forgot the client")

    documents, topics = _all_documents(settings), _all_topics(settings)
    for text in SECRETS:
        assert text not in documents, f"{text!r} still readable in a collection"
        assert text not in topics, f"{text!r} still readable on a topic"
    for pattern in CLINICAL:
        found = re.search(pattern, documents)
        assert not found, (
            f"{pattern!r} still readable in a collection: "
            f"{documents[max(0, found.start() - 200) : found.end() + 50]}"
        )
        found = re.search(pattern, topics)
        assert not found, (
            f"{pattern!r} still readable on a topic: "
            f"{topics[max(0, found.start() - 200) : found.end() + 50]}"
        )
    record = records.get(f"/clients/{cid}", headers=lead).json
    assert record["family_name"] == "[disposed]" and record["status"] == "disposed"
    assert record["referral_source"] == "[disposed]"
    # the pages over the disposed record still answer, with nothing made up
    for path in (f"/clients/{cid}/history", f"/clients/{cid}/timeline", f"/clients/{cid}/export"):
        assert records.get(path, headers=lead).status_code == 200, path
    for path in (
        f"/clients/{cid}/trajectory",
        f"/clients/{cid}/outcomes",
        "/risk-alerts",
        f"/dashboards/therapists/{tid}",
    ):
        assert measures.get(path, headers=lead).status_code == 200, path
    trajectory = json.dumps(measures.get(f"/clients/{cid}/trajectory", headers=lead).json)
    assert not re.search(r'"total":\s*\d', trajectory)
    # the disposed course's scores are gone, so it leaves the outcome rates rather than being
    # counted with made-up values; every other figure stays
    after = measures.get("/dashboards/practice", headers=lead, query_string=period).json
    assert after["practice"]["courses"] == before["practice"]["courses"] - 1
    assert after["practice"]["finished_with_paired_scores"] == 0
