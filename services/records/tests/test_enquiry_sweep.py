"""Service tier (issue 17): an enquiry that never became a client is disposed of when its
year of retention ends by the records worker's scheduled sweep, with no one asking; a recent
one is kept. Real broker and store, the service's own workers."""

import time
from datetime import timedelta

from services.records.app import create_app
from shared.crypto import DISPOSED, cipher_for
from shared.events import utcnow
from testkit.plugin import eventually, service_workers

from .test_enquiries import SAM, ok


def test_the_running_sweep_disposes_of_an_enquiry_past_retention_and_keeps_a_recent_one(
    settings, workers, auth_header
):
    s = settings.with_(extra={**settings.extra, "records": {"enquiry_sweep_seconds": 0.2}})
    app = create_app(s)
    api, admin = app.test_client(), auth_header("admin", sub="reception-user")
    lead = auth_header("clinical_lead", sub="lead-user")
    app.config["RECORDS_CLOCK"] = lambda: utcnow() - timedelta(days=400)
    old = ok(api.post("/enquiries", json=SAM, headers=admin), 201)
    app.config["RECORDS_CLOCK"] = utcnow
    recent = ok(api.post("/enquiries", json={**SAM, "given_name": "Ruth"}, headers=admin), 201)

    workers.start(*service_workers(s, "records"))

    def disposed():
        found = ok(api.get(f"/enquiries/{old['enquiry_id']}", headers=lead))
        # the key is destroyed just after the event is stored
        return found["status"] == "disposed" and found["given_name"] == DISPOSED and found

    gone = eventually(disposed, timeout=30)
    assert gone["concern"] == DISPOSED
    keys = cipher_for(s).keys
    assert keys.is_disposed(old["client_id"])

    # the inbox knew the recent one before the sweep's rounds that follow: still kept
    eventually(lambda: len(ok(api.get("/enquiries", headers=lead))["enquiries"]) == 2)
    time.sleep(1.0)  # five more rounds of the sweep
    kept = ok(api.get(f"/enquiries/{recent['enquiry_id']}", headers=lead))
    assert kept["status"] == "received" and kept["given_name"] == "Ruth"
    assert not keys.is_disposed(recent["client_id"])
