"""Enquiries: a new one (the public "get in touch" page, through the portal's service token,
or reception on the phone) and each step reception takes, on the `enquiries` blueprint of
queries/enquiries.py."""

from __future__ import annotations

from flask import current_app

from shared.auth import current_identity, requires
from shared.crypto import cipher_for
from shared.events import new_id
from shared.web import request_metadata

from ..application import application
from ..domain import enquiry as enq
from ..queries.enquiries import blp, enquiry_view
from ..queries.views import record_view
from ..schemas import problems
from ..schemas.clients import ClientOut
from ..schemas.enquiries import (
    ContactAttemptIn,
    DeclineIn,
    EnquiryIn,
    EnquiryOut,
    OfferIn,
    RegisterFromEnquiryIn,
    WaitlistIn,
)

RECEPTION = ("admin", "clinical_lead")


def _now():
    return current_app.config["RECORDS_CLOCK"]()


def reception_step(action: str, schema):
    """The route of one of reception's steps on an enquiry: `POST
    /enquiries/{id}/<action>`, the same roles, problems and answer (the enquiry) for each."""

    def decorate(view):
        for wrap in (
            blp.response(200, EnquiryOut),
            blp.arguments(schema),
            problems(blp, 401, 403, 404, 409),
            requires(*RECEPTION),
            blp.route(f"/enquiries/<enquiry_id>/{action}", methods=["POST"]),
        ):
            view = wrap(view)
        return view

    return decorate


def _step(enquiry_id: str, command) -> dict:
    outcome = application().enquiry_step(enquiry_id, command, request_metadata())
    return enquiry_view(outcome.state)


@blp.route("/enquiries", methods=["POST"])
@requires("service", *RECEPTION)
@problems(blp, 401, 403)
@blp.arguments(EnquiryIn)
@blp.response(201, EnquiryOut)
def receive_enquiry(body):
    """A person got in touch (`EnquiryReceived`). The portal's public page sends it with its
    service token; reception may take one down on the phone. A client id is reserved for
    the person, and their details are sealed under its key."""
    enquiry_id = new_id()
    command = enq.ReceiveEnquiry(
        enquiry_id=enquiry_id, client_id=new_id(), received_at=_now(), **body
    )
    view = _step(enquiry_id, command)
    return view, 201, {"Location": f"/enquiries/{enquiry_id}"}


@reception_step("contact-attempts", ContactAttemptIn)
def log_contact_attempt(body, enquiry_id):
    """Log a try at reaching the person (`EnquiryContactAttempted`)."""
    who = current_identity()
    return _step(enquiry_id, enq.LogContactAttempt(by=who.sub, at=_now(), **body))


@reception_step("offer", OfferIn)
def offer_assessment(body, enquiry_id):
    """Offer an assessment with a therapist (`AssessmentOffered`); the slots go to the person
    by link (scheduling `POST /booking-links`)."""
    who = current_identity()
    return _step(enquiry_id, enq.OfferAssessment(body["therapist_id"], who.sub, _now()))


@reception_step("waitlist", WaitlistIn)
def add_to_waiting_list(body, enquiry_id):
    """Put on the waiting list, or change the priority (`EnquiryWaitlisted`; the date first
    added stays)."""
    who = current_identity()
    return _step(enquiry_id, enq.AddToWaitingList(body["priority"], who.sub, _now()))


@reception_step("decline", DeclineIn)
def decline(body, enquiry_id):
    """Decline, with the reason, and say where the person was signposted (`EnquiryDeclined`)."""
    who = current_identity()
    return _step(
        enquiry_id, enq.DeclineEnquiry(body["reason"], who.sub, _now(), body["signposted_to"])
    )


@blp.route("/enquiries/<enquiry_id>/register", methods=["POST"])
@requires(*RECEPTION)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(RegisterFromEnquiryIn)
@blp.response(201, ClientOut)
def register(body, enquiry_id):
    """Register the person as a client with the enquiry's details (nothing retyped): only
    the date of birth and the therapist are asked. `EnquiryConverted` and `ClientRegistered`
    are appended together; the client keeps the id reserved at enquiry, so a slot they
    booked by link is already theirs."""
    app, who = application(), current_identity()
    state = app.register_from_enquiry(enquiry_id, body, who, request_metadata(), _now())
    return record_view(app, state, who), 201, {"Location": f"/clients/{state.client_id}"}


@blp.route("/enquiries/<enquiry_id>/disposal", methods=["POST"])
@requires("clinical_lead")
@problems(blp, 401, 403, 404, 409)
@blp.response(200, EnquiryOut)
def dispose(enquiry_id):
    """Dispose of an enquiry that never became a client, a year after its last step
    (`EnquiryDisposed`, then the key reserved for the person is destroyed: crypto-shredding,
    as for a client record). Inside that year, or once registered: 409."""
    keys = cipher_for(current_app.config["RAPPORT_SETTINGS"]).keys
    outcome = application().dispose_enquiry(enquiry_id, _now(), request_metadata(), keys)
    return enquiry_view(outcome.state)
