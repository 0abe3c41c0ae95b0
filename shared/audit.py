"""The audit trail: who read or changed what, when and from where — append-only and
tamper-evident. Each entry carries the SHA-256 of the previous entry's hash and its own
canonical content, so altering, inserting or deleting any entry breaks the chain from that
point; `python -m shared.audit verify` checks it and names the first bad entry.

All services write to one practice-wide audit database (`<db_prefix>audit`), so the chain
is one sequence. Commands are audited by their events already; reads of clinical records
are recorded here by the API that serves them (`record_read`)."""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import click
import pymongo
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure

from .config import Settings

GENESIS = "0" * 64


# What an entry says, each field covered by its hash (`prev_hash` and `hash` are the chain)
FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "resource",
    "client_id",
    "source_ip",
    "correlation_id",
    "service",
)


def _canonical(entry: dict) -> bytes:
    fields = {k: entry.get(k) for k in FIELDS}
    if isinstance(fields["at"], datetime):
        fields["at"] = fields["at"].astimezone(UTC).isoformat(timespec="milliseconds")
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(prev_hash: str, entry: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(entry)).hexdigest()


class AuditTrail:
    def __init__(self, mongo: pymongo.MongoClient, database: str):
        self.entries = mongo[database]["audit_entries"]

    def ensure_indexes(self) -> None:
        self.entries.create_index([("seq", ASCENDING)], unique=True, name="seq_unique")
        self.entries.create_index([("client_id", ASCENDING), ("seq", ASCENDING)])

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        resource: str,
        client_id: str | None = None,
        source_ip: str | None = None,
        correlation_id: str | None = None,
        service: str | None = None,
    ) -> dict:
        """Append one entry; a concurrent writer taking the same seq makes us retry. The
        entry's `_id` is fixed before the first attempt, so a write the driver retried after
        a lost reply is recognised as ours, never appended twice."""
        entry_id = uuid.uuid4().hex
        for _ in range(50):
            last = self.entries.find_one({}, {"seq": 1, "hash": 1}, sort=[("seq", DESCENDING)])
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
            now = datetime.now(UTC)
            entry = {
                "_id": entry_id,
                "seq": seq,
                "at": now.replace(microsecond=now.microsecond // 1000 * 1000),
                "actor": actor,
                "role": role,
                "action": action,
                "resource": resource,
                "client_id": client_id,
                "source_ip": source_ip,
                "correlation_id": correlation_id,
                "service": service,
                "prev_hash": prev,
            }
            entry["hash"] = entry_hash(prev, entry)
            try:
                self.entries.insert_one(entry)
                return entry
            except (DuplicateKeyError, OperationFailure):
                mine = self.entries.find_one({"_id": entry_id})
                if mine is not None:
                    return mine
                continue
        raise RuntimeError("audit trail: could not append after 50 attempts")

    def entries_between(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        client_id: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        query: dict = {}
        if since or until:
            query["at"] = {
                **({"$gte": since} if since else {}),
                **({"$lte": until} if until else {}),
            }
        if client_id:
            query["client_id"] = client_id
        return list(self.entries.find(query, {"_id": 0}).sort("seq", ASCENDING).limit(limit))

    def verify(self) -> tuple[bool, str]:
        """(ok, message). Walks the chain in seq order."""
        prev, expected_seq, count = GENESIS, 1, 0
        for entry in self._all():
            if entry["seq"] != expected_seq:
                return False, f"entry {expected_seq} is missing (next found is {entry['seq']})"
            if entry.get("prev_hash") != prev:
                return False, f"entry {entry['seq']} does not follow entry {entry['seq'] - 1}"
            if entry_hash(prev, entry) != entry.get("hash"):
                return False, f"entry {entry['seq']} was altered"
            prev, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
        return True, f"{count} entries verified"

    def _all(self) -> Iterator[dict]:
        return self.entries.find({}).sort("seq", ASCENDING)


def trail_for(settings: Settings) -> AuditTrail:
    from .mongo import client

    return AuditTrail(client(settings.mongo_uri_of("audit")), settings.database("audit"))


def record_read(resource: str, client_id: str | None = None, action: str = "read") -> None:
    """Record that the current request's identity read `resource` (call from a Flask view)."""
    from flask import current_app, g, request

    from .auth import current_identity

    identity = current_identity()
    trail = current_app.extensions.get("rapport_audit")
    if trail is None:
        trail = trail_for(current_app.config["RAPPORT_SETTINGS"])
        trail.ensure_indexes()
        current_app.extensions["rapport_audit"] = trail
    trail.append(
        actor=identity.sub,
        role=identity.role,
        action=action,
        resource=resource,
        client_id=client_id,
        source_ip=request.remote_addr,
        correlation_id=g.get("correlation_id"),
        service=current_app.config.get("RAPPORT_SERVICE"),
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The audit trail of clinical reads."""


@cli.command()
def verify() -> None:
    """Check the hash chain; name the first altered, missing or re-chained entry."""
    from .config import Settings

    ok, message = trail_for(Settings.from_env()).verify()
    click.echo(("OK: " if ok else "TAMPERED: ") + message)
    sys.exit(0 if ok else 1)


@cli.command()
def export() -> None:
    """Print every entry as one JSON line, oldest first."""
    from .config import Settings

    for entry in trail_for(Settings.from_env())._all():
        entry.pop("_id", None)
        click.echo(json.dumps(entry, default=str))


if __name__ == "__main__":
    cli(prog_name="python -m shared.audit")
