"""Crypto-shredding: personal data and clinical free text inside events are encrypted with a
per-client key (AES-256-GCM, `cryptography`), so destroying the key disposes of the data while
the events — and every count derived from them — stay.

- Which fields: those whose schema field has `metadata={"personal": True}` (shared/contracts).
  The key is named by the event's `client_id`.
- Where keys live: a separate database (`<db_prefix>keys`), each client key wrapped (AES-GCM)
  by a master key from the environment (`RAPPORT_MASTER_KEY`), never in the events.
- Sealed value on the wire and in the store: {"$enc": 1, "kid": client_id, "n": nonce, "c": ct},
  authenticated with the client id and the field path, so a ciphertext cannot be moved to
  another client or field unnoticed.
- After disposal the key is gone: opening yields a placeholder ("[disposed]" for text; other
  values are left out and the schema loads partially).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pymongo
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from marshmallow import Schema
from marshmallow import fields as mf
from pymongo.errors import DuplicateKeyError

from .config import Settings
from .events import EventRegistry

DISPOSED = "[disposed]"


class KeyDisposed(LookupError):
    """The client's key was destroyed: their personal data can no longer be read."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


class KeyStore:
    """Per-client data keys, wrapped by the master key; cached briefly in-process."""

    def __init__(
        self,
        mongo: pymongo.MongoClient,
        database: str,
        master_key_b64: str,
        cache_seconds: float = 30.0,
    ):
        self.keys = mongo[database]["client_keys"]
        self._master = AESGCM(_unb64(master_key_b64))
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()
        self.cache_seconds = cache_seconds

    def _cached(self, client_id: str) -> tuple[bool, bytes | None]:
        with self._lock:
            hit = self._cache.get(client_id)
        if hit and time.monotonic() - hit[0] < self.cache_seconds:
            return True, hit[1]
        return False, None

    def _remember(self, client_id: str, key: bytes | None) -> None:
        with self._lock:
            self._cache[client_id] = (time.monotonic(), key)

    def _unwrap(self, doc: dict) -> bytes | None:
        if doc.get("disposed_at") is not None or doc.get("wrapped") is None:
            return None
        return self._master.decrypt(
            _unb64(doc["nonce"]), _unb64(doc["wrapped"]), doc["_id"].encode()
        )

    def key_for_writing(self, client_id: str) -> bytes:
        """The client's key, created on first use. Writing for a disposed client is refused."""
        hit, key = self._cached(client_id)
        if hit and key is not None:
            return key
        doc = self.keys.find_one({"_id": client_id})
        if doc is None:
            fresh, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
            try:
                self.keys.insert_one(
                    {
                        "_id": client_id,
                        "nonce": _b64(nonce),
                        "wrapped": _b64(self._master.encrypt(nonce, fresh, client_id.encode())),
                        "created_at": datetime.now(UTC),
                        "disposed_at": None,
                    }
                )
            except DuplicateKeyError:
                pass  # another writer created it first: use theirs
            doc = self.keys.find_one({"_id": client_id})
        key = self._unwrap(doc) if doc is not None else None
        if key is None:
            raise KeyDisposed(f"client {client_id} has been disposed of")
        self._remember(client_id, key)
        return key

    def key_for_reading(self, client_id: str) -> bytes | None:
        hit, key = self._cached(client_id)
        if hit:
            return key
        doc = self.keys.find_one({"_id": client_id})
        key = self._unwrap(doc) if doc else None
        self._remember(client_id, key)
        return key

    def destroy(self, client_id: str) -> bool:
        """Crypto-shred: remove the wrapped key for good. Returns False if already gone."""
        result = self.keys.update_one(
            {"_id": client_id, "disposed_at": None},
            {
                "$set": {"disposed_at": datetime.now(UTC)},
                "$unset": {"wrapped": "", "nonce": ""},
            },
            upsert=False,
        )
        if result.matched_count == 0 and self.keys.find_one({"_id": client_id}) is None:
            self.keys.insert_one({"_id": client_id, "disposed_at": datetime.now(UTC)})
            result_changed = True
        else:
            result_changed = result.modified_count == 1
        self._remember(client_id, None)
        return result_changed

    def is_disposed(self, client_id: str) -> bool:
        return client_id in self.destroyed_at([client_id])

    def destroyed_at(self, client_ids: list[str]) -> dict[str, datetime]:
        """When each of these clients' keys was destroyed (in one read); a key not destroyed
        (or never made) is left out."""
        found = self.keys.find(
            {"_id": {"$in": list(client_ids)}, "disposed_at": {"$ne": None}}, {"disposed_at": 1}
        )
        return {
            d["_id"]: d["disposed_at"].replace(tzinfo=d["disposed_at"].tzinfo or UTC) for d in found
        }


def rewrap_keys(
    mongo: pymongo.MongoClient, database: str, old_master_b64: str, new_master_b64: str
) -> dict[str, int]:
    """Master-key rotation: wrap every client key again under the new master key. The client
    keys themselves do not change, so every sealed value in every event stays readable and
    nothing in the events is rewritten; afterwards the old master key opens no key.

    Safe to run again after an interruption: a key the new master already opens is skipped.
    Each key is replaced only if it is still the wrapped key read (a disposal meanwhile wins).
    Run it with the services stopped (deploy/README.md): a process still holding the old
    master key could neither read nor create keys once some are rewrapped."""
    if _unb64(old_master_b64) == _unb64(new_master_b64):
        raise ValueError("the new master key is the old one")
    old, new = AESGCM(_unb64(old_master_b64)), AESGCM(_unb64(new_master_b64))
    counts = {"rewrapped": 0, "already": 0, "disposed": 0}
    keys = mongo[database]["client_keys"]
    for doc in keys.find({}):
        if doc.get("disposed_at") is not None or doc.get("wrapped") is None:
            counts["disposed"] += 1
            continue
        nonce, wrapped, aad = _unb64(doc["nonce"]), _unb64(doc["wrapped"]), doc["_id"].encode()
        try:
            new.decrypt(nonce, wrapped, aad)
            counts["already"] += 1
            continue
        except InvalidTag:
            pass
        plain = old.decrypt(
            nonce, wrapped, aad
        )  # InvalidTag: the old key given is not the one in use
        fresh = os.urandom(12)
        done = keys.update_one(
            {"_id": doc["_id"], "wrapped": doc["wrapped"], "disposed_at": None},
            {
                "$set": {
                    "nonce": _b64(fresh),
                    "wrapped": _b64(new.encrypt(fresh, plain, aad)),
                    "rewrapped_at": datetime.now(UTC),
                }
            },
        )
        counts["rewrapped" if done.modified_count else "disposed"] += 1
    return counts


def _personal_paths(schema: Schema, prefix: str = "") -> list[tuple[str, mf.Field]]:
    """Dotted paths of personal fields; nested schemas are walked."""
    out = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        path = f"{prefix}{key}"
        if field.metadata.get("personal"):
            out.append((path, field))
        elif isinstance(field, mf.Nested):
            out.extend(_personal_paths(field.schema, path + "."))
        elif isinstance(field, mf.List) and isinstance(field.inner, mf.Nested):
            out.extend(_personal_paths(field.inner.schema, path + "[]."))
        elif isinstance(field, mf.List) and field.inner.metadata.get("personal"):
            out.append((path, field))
    return out


class FieldCipher:
    def __init__(self, keys: KeyStore):
        self.keys = keys
        self._paths: dict[tuple[str, int], list] = {}

    def paths(
        self, registry: EventRegistry, type_: str, version: int
    ) -> list[tuple[str, mf.Field]]:
        cache_key = (type_, version)
        if cache_key not in self._paths:
            schema_cls = registry._info(type_).schemas[version]
            self._paths[cache_key] = _personal_paths(schema_cls())
        return self._paths[cache_key]

    # -- sealing (write side) -----------------------------------------------------------
    def seal(self, registry: EventRegistry, type_: str, version: int, data: dict) -> dict:
        paths = self.paths(registry, type_, version)
        client_id = data.get("client_id")
        if not paths or not client_id:
            return data
        key = AESGCM(self.keys.key_for_writing(client_id))
        sealed = json.loads(json.dumps(data))  # a deep copy of JSON-safe data

        def seal_value(value, path):
            return _seal_with(key, client_id, path, value)

        for path, _ in paths:
            _apply(sealed, path.split("."), seal_value, path)
        return sealed

    def seal_value(self, client_id: str, path: str, value: Any) -> dict | None:
        """One personal value kept outside the events (a projection's copy of it), sealed
        under the client's key as event fields are, so shredding the key leaves it unreadable
        wherever it was copied. `path` names the value (it is authenticated with it)."""
        if value is None:
            return None
        return _seal_with(AESGCM(self.keys.key_for_writing(client_id)), client_id, path, value)

    def open_value(self, value: Any, path: str) -> Any:
        """The plain value of `seal_value(..., path, ...)`; None once the key is destroyed.
        A value that is not sealed is returned as it is (documents written before sealing)."""
        if not (isinstance(value, dict) and value.get("$enc") == 1):
            return value
        opened, shredded = self.open({path: value})
        return None if shredded else opened[path]

    # -- opening (read side) ------------------------------------------------------------
    def open(self, data: dict) -> tuple[dict, list[str]]:
        """Decrypt every sealed value; return (data, paths that could not be opened)."""
        shredded: list[str] = []

        def walk(node, path):
            if isinstance(node, dict):
                if node.get("$enc") == 1:
                    key = self.keys.key_for_reading(node["kid"])
                    if key is None:
                        shredded.append(path)
                        return _Shredded
                    plain = AESGCM(key).decrypt(
                        _unb64(node["n"]),
                        _unb64(node["c"]),
                        f"{node['kid']}|{_generic(path)}".encode(),
                    )
                    return json.loads(plain)
                return {k: walk(v, f"{path}.{k}" if path else k) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
            return node

        opened = walk(data, "")
        return opened, shredded


def _seal_with(key: AESGCM, client_id: str, path: str, value: Any) -> dict | None:
    if value is None:
        return None
    nonce = os.urandom(12)
    ct = key.encrypt(nonce, json.dumps(value).encode(), f"{client_id}|{path}".encode())
    return {"$enc": 1, "kid": client_id, "n": _b64(nonce), "c": _b64(ct)}


class _ShreddedType:
    def __repr__(self):
        return "<shredded>"


_Shredded = _ShreddedType()


def _generic(path: str) -> str:
    """'inventory[3].name' -> 'inventory[].name' (the path the value was sealed under)."""
    import re

    return re.sub(r"\[\d+\]", "[]", path)


def _apply(node: Any, parts: list[str], fn: Callable[[Any, str], Any], full_path: str) -> None:
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2]) if isinstance(node, dict) else None
        for item in items or []:
            if isinstance(item, dict):
                _apply(item, rest, fn, full_path)
        return
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _apply(node[head], rest, fn, full_path)
    else:
        node[head] = fn(node[head], full_path)


def placeholders(schema: Schema, data: Any) -> tuple[Any, list[str]]:
    """Replace shredded values: text becomes "[disposed]"; anything else is removed and its
    dotted path returned so the schema can load partially."""
    partial: list[str] = []

    def fix(node: Any, sch: Schema, prefix: str) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            field = sch.fields.get(key)
            if value is _Shredded:
                if isinstance(field, mf.String) and _accepts(field, DISPOSED):
                    out[key] = DISPOSED
                elif isinstance(field, mf.List):
                    out[key] = []
                else:
                    partial.append(prefix + key)
                continue
            if isinstance(field, mf.Nested) and isinstance(value, dict):
                out[key] = fix(value, field.schema, prefix + key + ".")
            elif (
                isinstance(field, mf.List)
                and isinstance(field.inner, mf.Nested)
                and isinstance(value, list)
            ):
                out[key] = [fix(v, field.inner.schema, prefix + key + ".") for v in value]
            else:
                out[key] = value
        return out

    return fix(data, schema, ""), partial


def _accepts(field: mf.Field, value: Any) -> bool:
    """Whether the field's validators take `value`: a text limited to a set of values (a
    course outcome, a diagnosis) cannot hold the placeholder, so once shredded it is absent
    like a number; "[disposed]" there made the whole record unreadable (a 500 on every read)."""
    from marshmallow import ValidationError

    try:
        for validator in field.validators:
            validator(value)
    except ValidationError:
        return False
    return True


_ciphers: dict[tuple[str, str, str, float], FieldCipher] = {}
_ciphers_lock = threading.Lock()


def cipher_for(settings: Settings) -> FieldCipher:
    """One cipher (and key cache) per process per store, so a key destroyed here is
    forgotten here at once; other processes forget it within `settings.key_cache_seconds`,
    which is why a disposal's sweep waits that long (shared/disposal.py)."""
    from .mongo import client

    uri = settings.mongo_uri_of("keys")
    ident = (uri, settings.database("keys"), settings.master_key, settings.key_cache_seconds)
    with _ciphers_lock:
        found = _ciphers.get(ident)
        if found is None:
            found = FieldCipher(
                KeyStore(
                    client(uri),
                    settings.database("keys"),
                    settings.master_key,
                    cache_seconds=settings.key_cache_seconds,
                )
            )
            _ciphers[ident] = found
        return found
