"""Request and response schemas of the records API (flask-smorest documents them):
`clients` (registration, corrections, the record, history, export, retention), `care` (the
clinical commands and what they answer), `reports` (caseload, timeline, audit). Here: the
field helpers they share and the problem+json answers every route documents."""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.inputs import Moment, free_text, line_text, safe_id

__all__ = ["Moment", "free_text", "line_text"]  # the schema modules import them from here


def ident(**kwargs) -> fields.String:
    return safe_id(**kwargs)


def optional_text(max_length: int = 10_000) -> fields.String:
    return free_text(max_length, load_default=None, allow_none=True)


class ProblemError(Schema):
    field = fields.String()
    reason = fields.String()


class Problem(Schema):
    """RFC 9457 problem details, as every error of the API is answered."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String(metadata={"description": "machine-readable reason of a 409"})
    errors = fields.List(fields.Nested(ProblemError))
    correlation_id = fields.String()


PROBLEMS = {
    401: "no valid bearer token",
    403: "wrong role, or not this therapist's client",
    404: "no such client (or task, or note)",
    409: "not allowed in this state (discharged, phase order, stale revision)",
}


def problems(blp, *codes: int):
    """Document the problem+json answers a route gives besides its success and 422."""

    def decorate(view):
        for code in codes:
            view = blp.alt_response(
                code,
                schema=Problem,
                description=PROBLEMS[code],
                content_type="application/problem+json",
            )(view)
        return view

    return decorate
