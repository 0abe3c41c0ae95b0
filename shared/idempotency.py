"""Once-only writes: a signed-in caller's POST/PUT/PATCH/DELETE with an `Idempotency-Key`
header is carried out once; the same key again with the same request gets the first answer
back (status, body, Location, X-Rapport-Position, and `Idempotent-Replayed: true`).

- Keys are scoped by the caller (the token's `sub`): one person cannot replay another's answer.
- The same key with another request (method, path, query or body) is refused with 422.
- Concurrent requests with one key: the first claims the key (a unique `_id`), the others
  wait for its answer and replay it (or answer 409 if it takes longer than `WAIT`).
- The claim is marked `committed` in the same store transaction as the command's events
  (shared.web's request event store calls `in_transaction`), and only while this request
  still owns it: a request whose claim was taken over (it looked abandoned) cannot commit.
  So the work is done once even if a process dies half-way; if it died after committing and
  before answering, a retry is told so (409) instead of doing the work again.
- Only an answer worth replaying is kept: a success, or whatever followed a committed write.
  A refusal (422, 409, ...) releases the key, so a form shown again with its error can be
  corrected and sent with the same key.
- Records expire after `TTL` (a TTL index). Answers are kept encrypted (AES-GCM, a key
  derived from the master key): a write's answer can hold clinical text. The clients a
  write's events were about are noted, and a disposal deletes their answers at once.
- Public routes (the token route, the client's questionnaire link) ignore the header: they
  have no caller to scope by, and a token answer must never be stored.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Response, g, request
from pymongo import ASCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .crypto import _unb64
from .events import utcnow
from .mongo import delete_in_pieces

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
COLLECTION = "idempotency_keys"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
TTL = timedelta(hours=24)
WAIT = 20.0  # seconds a second request waits for the first one's answer
ABANDONED = 60.0  # a pending claim this old belongs to a request that died
KEPT_HEADERS = ("Content-Type", "Location", "X-Rapport-Position")
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the IETF draft's examples


class KeyRefused(Exception):
    def __init__(self, status: int, detail: str, code: str, position: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.code, self.position = status, detail, code, position


class ClaimLost(RuntimeError):
    """This request's key was taken over by a retry: its events must not be committed."""


def ensure_indexes(db: Database) -> None:
    db[COLLECTION].create_indexes(
        [
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires"),
            IndexModel([("client_ids", ASCENDING)], name="client_ids"),
        ]
    )


def _cipher(master_key_b64: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rapport idempotency answers"
    ).derive(_unb64(master_key_b64))
    return AESGCM(key)


class Claim:
    def __init__(self, doc_id: str, owner: str):
        self.id, self.owner = doc_id, owner
        self.committed = False
        self.finished = False


def begin(db: Database, sub: str, master_key: str) -> Response | None:
    """before_request: claim the key, or answer at once (a replay, or a refusal)."""
    if request.method not in METHODS or HEADER not in request.headers:
        return None
    key = request.headers[HEADER]
    if not _KEY.fullmatch(key):
        raise KeyRefused(400, f"{HEADER} must be 1 to 255 visible ASCII characters", "bad_key")
    doc_id = hashlib.sha256(f"{sub}\0{key}".encode()).hexdigest()
    fingerprint = hashlib.sha256(
        b"\0".join(
            [request.method.encode(), request.full_path.encode(), request.get_data(cache=True)]
        )
    ).hexdigest()
    collection = db[COLLECTION]
    deadline = time.monotonic() + WAIT
    while True:
        owner = uuid.uuid4().hex
        now = utcnow()
        try:
            collection.insert_one(
                {
                    "_id": doc_id,
                    "owner": owner,
                    "state": "pending",
                    "fingerprint": fingerprint,
                    "claimed_at": now,
                    "expires_at": now + TTL,
                }
            )
            g.rapport_claim = Claim(doc_id, owner)
            return None
        except DuplicateKeyError:
            pass
        doc = collection.find_one({"_id": doc_id})
        if doc is None:
            continue  # expired or released meanwhile: claim it
        if doc["owner"] == owner:
            # our own insert landed and the driver's retry of it (retryable writes, after a
            # dropped connection) met it: the claim is this request's, not another's
            g.rapport_claim = Claim(doc_id, owner)
            return None
        if doc["fingerprint"] != fingerprint:
            raise KeyRefused(
                422,
                f"this {HEADER} was already used for another request; "
                "use a new key for a new request",
                "key_reused",
            )
        if doc["state"] == "done":
            return _replay(doc, master_key)
        age = (utcnow() - doc["claimed_at"]).total_seconds()
        if doc["state"] == "committed" and age > ABANDONED:
            raise KeyRefused(
                409,
                "this request was carried out already but its answer was "
                "lost; reload to see the result",
                "answer_lost",
                doc.get("position"),
            )
        if doc["state"] == "pending" and age > ABANDONED:
            taken = collection.find_one_and_update(
                {"_id": doc_id, "owner": doc["owner"], "state": "pending"},
                {"$set": {"owner": owner, "claimed_at": now}},
            )
            if taken is not None:
                g.rapport_claim = Claim(doc_id, owner)
                return None
            continue
        if time.monotonic() > deadline:
            raise KeyRefused(
                409,
                f"a request with this {HEADER} is still being carried out; try again shortly",
                "key_in_progress",
            )
        time.sleep(0.05)


def in_transaction(db: Database, session: ClientSession, client_ids: Iterable[str] = ()) -> None:
    """In the transaction appending the request's events: mark the claim committed, only if
    this request still owns it (else the whole append is undone). The clients the events are
    about are noted, so that a disposal forgets the answer (`forget_client`)."""
    claim: Claim | None = g.get("rapport_claim")
    if claim is None:
        return
    change: dict = {"$set": {"state": "committed"}}
    if client_ids:
        change["$addToSet"] = {"client_ids": {"$each": sorted(client_ids)}}
    found = db[COLLECTION].update_one(
        {"_id": claim.id, "owner": claim.owner}, change, session=session
    )
    if found.matched_count == 0:
        raise ClaimLost(f"{HEADER} claim {claim.id} was taken over")


def committed() -> None:
    claim: Claim | None = g.get("rapport_claim")
    if claim is not None:
        claim.committed = True


def finish(db: Database, response: Response, master_key: str) -> Response:
    """after_request: keep the answer for replays, or release the key after a refusal."""
    claim: Claim | None = g.get("rapport_claim")
    if claim is None or claim.finished:
        return response
    claim.finished = True
    collection = db[COLLECTION]
    if not (200 <= response.status_code < 300 or claim.committed):
        collection.delete_one({"_id": claim.id, "owner": claim.owner, "state": "pending"})
        return response
    body = response.get_data()
    nonce = os.urandom(12)
    sealed = _cipher(master_key).encrypt(nonce, body, claim.id.encode())
    headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
    collection.update_one(
        {"_id": claim.id, "owner": claim.owner},
        {
            "$set": {
                "state": "done",
                "status": response.status_code,
                "headers": headers,
                "nonce": nonce,
                "body": sealed,
                "position": headers.get("X-Rapport-Position"),
            }
        },
    )
    return response


def release(db: Database) -> None:
    """teardown: a request that failed without an answer gives its key back."""
    claim: Claim | None = g.get("rapport_claim")
    if claim is None or claim.finished:
        return
    claim.finished = True
    if not claim.committed:
        db[COLLECTION].delete_one({"_id": claim.id, "owner": claim.owner, "state": "pending"})


def forget_client(db: Database, client_id: str) -> int:
    """A disposed client (shared.disposal): drop the kept answers of writes about them."""
    return delete_in_pieces(db[COLLECTION], {"client_ids": client_id})


def _replay(doc: dict, master_key: str) -> Response:
    body = _cipher(master_key).decrypt(doc["nonce"], doc["body"], doc["_id"].encode())
    response = Response(body, status=doc["status"])
    for name, value in (doc.get("headers") or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response
