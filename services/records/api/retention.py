"""Retention: requests to erase (refused inside the retention period, and recorded) and
disposal at its end (crypto-shredding). Clinical lead only."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from shared.application import Outcome
from shared.auth import current_identity, requires
from shared.crypto import cipher_for
from shared.web import context, problem, request_metadata

from ..application import application
from ..domain.commands import DisposeClient, RequestErasure
from ..schemas import problems
from ..schemas.clients import DisposalOut, ErasureIn

blp = Blueprint(
    "retention",
    __name__,
    url_prefix="/clients",
    description="Erasure requests and disposal at the end of retention",
)


def _now():
    return current_app.config["RECORDS_CLOCK"]()


def _destroy_key(client_id: str) -> None:
    # after ClientDisposed is recorded; repeating it is harmless, so a crash in between is
    # mended by asking again
    cipher_for(current_app.config["RAPPORT_SETTINGS"]).keys.destroy(client_id)


@blp.route("/<client_id>/erasure-requests", methods=["POST"])
@requires("clinical_lead")
@problems(blp, 401, 403, 404, 409)
@blp.arguments(ErasureIn)
@blp.response(200, DisposalOut, description="past retention: the record was disposed of")
def request_erasure(body, client_id):
    """Record a request to erase. Inside the retention period it is refused with the
    reason (409) and the refusal is recorded (`ErasureRefused`); after it, the record is
    disposed of (`ClientDisposed`)."""
    command = RequestErasure(client_id, body["requested_by"], body["request"], _now())
    outcome = application().request_erasure(command, current_identity(), request_metadata())
    refused = next((e for e in outcome.events if e.type == "ErasureRefused"), None)
    if refused is not None:
        until = refused.data.get("retention_until")
        return problem(
            409,
            "Conflict",
            refused.data["refusal"],
            code="retention",
            retention_until=until.isoformat() if until else None,
        )
    return _disposed(client_id, outcome)


@blp.route("/<client_id>/disposal", methods=["POST"])
@requires("clinical_lead")
@problems(blp, 401, 403, 404, 409)
@blp.response(200, DisposalOut)
def dispose(client_id):
    """Dispose of the record at the end of retention: `ClientDisposed`, then the client's
    key is destroyed. Inside retention: 409 with the date it ends."""
    command = DisposeClient(client_id, _now())
    outcome = application().dispose(command, current_identity(), request_metadata())
    return _disposed(client_id, outcome)


def _disposed(client_id: str, outcome: Outcome) -> dict:
    _destroy_key(client_id)
    done = next((e for e in outcome.events if e.type == "ClientDisposed"), None)
    if done is None:  # disposed of before: look it up
        done = next(e for e in context().store.load(client_id) if e.type == "ClientDisposed")
    return {
        "client_id": client_id,
        "status": "disposed",
        "retention_ended_at": done.data["retention_ended_at"],
        "disposed_at": done.data["disposed_at"],
    }
