"""Clients: registration and corrections, on the `clients` blueprint of queries/clients.py
(the list, the record as of any past moment, the history, the export)."""

from __future__ import annotations

from shared.auth import current_identity, requires
from shared.events import new_id
from shared.web import request_metadata

from ..application import application
from ..domain.commands import CorrectDetails, RegisterClient
from ..queries.clients import blp
from ..queries.views import record_view
from ..schemas import problems
from ..schemas.clients import ClientCorrectionIn, ClientIn, ClientOut


@blp.route("", methods=["POST"])
@requires("admin", "therapist", "clinical_lead")
@problems(blp, 401, 403)
@blp.arguments(ClientIn)
@blp.response(201, ClientOut)
def register_client(body):
    """Register a client from an enquiry or a referral (`ClientRegistered`)."""
    app, who = application(), current_identity()
    client_id = new_id()
    state = app.register(RegisterClient(client_id=client_id, **body), who, request_metadata())
    return record_view(app, state, who), 201, {"Location": f"/clients/{client_id}"}


@blp.route("/<client_id>", methods=["PATCH"])
@requires("admin", "therapist", "clinical_lead")
@problems(blp, 401, 403, 404, 409)
@blp.arguments(ClientCorrectionIn)
@blp.response(200, ClientOut)
def correct_details(body, client_id):
    """Correct details with a reason (`ClientDetailsCorrected`); reassigning the
    therapist is a correction (reception or the clinical lead only)."""
    app, who = application(), current_identity()
    reason = body.pop("reason")
    state = app.correct_details(CorrectDetails(client_id, reason, body), who, request_metadata())
    return record_view(app, state, who)
