"""The audit trail's hash chain against the real store: altering or deleting any entry is
detected and named."""

from shared.audit import AuditTrail
from shared.mongo import client


def trail(settings):
    t = AuditTrail(client(settings.mongo_uri), settings.database("audit"))
    t.ensure_indexes()
    for i in range(5):
        t.append(
            actor=f"u{i}",
            role="therapist",
            action="read",
            resource=f"/clients/c{i}",
            client_id=f"c{i}",
        )
    return t


def test_an_untouched_chain_verifies(settings):
    assert trail(settings).verify() == (True, "5 entries verified")


def test_an_altered_entry_is_named(settings):
    t = trail(settings)
    t.entries.update_one({"seq": 3}, {"$set": {"actor": "someone-else"}})
    assert t.verify() == (False, "entry 3 was altered")


def test_a_deleted_entry_is_named(settings):
    t = trail(settings)
    t.entries.delete_one({"seq": 2})
    assert t.verify() == (False, "entry 2 is missing (next found is 3)")


def test_a_rewritten_tail_is_detected(settings):
    t = trail(settings)
    entry = t.entries.find_one({"seq": 4})
    from shared.audit import entry_hash

    forged = {**entry, "actor": "forger"}
    forged["hash"] = entry_hash(
        entry["prev_hash"], forged
    )  # recomputed, but entry 5 still points at the old hash
    t.entries.replace_one({"seq": 4}, forged)
    assert t.verify() == (False, "entry 5 does not follow entry 4")


def test_the_verify_command_fails_and_names_the_entry(settings):
    import os
    import subprocess
    import sys

    t = trail(settings)
    env = {
        **os.environ,
        "RAPPORT_MONGO_URI": settings.mongo_uri,
        "RAPPORT_DB_PREFIX": settings.db_prefix,
    }
    ok = subprocess.run(
        [sys.executable, "-m", "shared.audit", "verify"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "OK: 5 entries verified"
    t.entries.update_one({"seq": 4}, {"$set": {"resource": "/clients/someone-else"}})
    bad = subprocess.run(
        [sys.executable, "-m", "shared.audit", "verify"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stdout.strip() == "TAMPERED: entry 4 was altered"
