"""`/metrics` on every service exposes the figures operators alert on: request rate, latency
and errors; outbox backlog and age; consumer lag; projection staleness; and for notifications
the messages pending and failed — read while the services are running with their workers."""

import re

from testkit.plugin import eventually

from .conftest import FOUR

COMMON = (
    "rapport_http_requests_total",
    "rapport_http_request_seconds_bucket",
    "rapport_outbox_backlog",
    "rapport_outbox_oldest_age_seconds",
    "rapport_store_up",
    "rapport_consumer_lag",
    "rapport_consumer_heartbeat_age_seconds",
    "rapport_projection_staleness_seconds",
)


def _families(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([a-z_]+)(?:\{|\s)", text, re.M)}


def test_every_service_exposes_the_operational_figures(practice, auth_header):
    lead = auth_header("clinical_lead")
    tid = (
        practice["scheduling"]
        .post(
            "/therapists",
            headers=lead,
            json={"name": "Dr A", "email": "a@practice.test", "modalities": ["video"]},
        )
        .json["therapist_id"]
    )
    practice["records"].post(
        "/clients",
        headers=auth_header("admin"),
        json={
            "given_name": "Ann",
            "family_name": "B",
            "date_of_birth": "1990-01-01",
            "preferred_modality": "video",
            "therapist_id": tid,
            "referral_source": "self",
        },
    )
    for name in FOUR:
        client = practice[name]
        client.get("/healthz")

        def complete(client=client):
            text = client.get("/metrics").get_data(as_text=True)
            missing = [f for f in COMMON if f not in _families(text)]
            return text if not missing else None

        text = eventually(complete, timeout=90, message=f"{name}: every figure in /metrics")
        assert re.search(rf'rapport_store_up\{{service="{name}"\}} 1\.0', text)
        healthz = f'method="GET",route="/healthz",service="{name}",status="200"'
        assert "rapport_http_requests_total{" + healthz + "}" in text
    notifications = practice["notifications"].get("/metrics").get_data(as_text=True)
    assert "rapport_notifications" in notifications
