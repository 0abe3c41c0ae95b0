"""Request and response schemas (marshmallow); flask-smorest documents them in /openapi.json."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.measures import INSTRUMENTS as CODES
from shared.inputs import free_text

from .instruments import answer_errors


class Option(Schema):
    value = fields.Integer()
    label = fields.String()


class Item(Schema):
    number = fields.Integer()
    text = fields.String()
    not_applicable = fields.String(
        allow_none=True,
        metadata={"description": "text of the 'not applicable' choice, if the item has one"},
    )
    reversed = fields.Boolean()
    risk = fields.Boolean()


class BandOut(Schema):
    from_ = fields.Float(data_key="from")
    above = fields.Boolean()
    label = fields.String()


class InstrumentOut(Schema):
    code = fields.String()
    title = fields.String()
    source = fields.String()
    period = fields.String()
    preamble = fields.String()
    items = fields.List(fields.Nested(Item))
    options = fields.List(fields.Nested(Option))
    item_range = fields.List(fields.Integer())
    total_range = fields.List(fields.Integer())
    bands = fields.List(fields.Nested(BandOut))
    caseness = fields.Float(allow_none=True)
    loinc_total = fields.String(allow_none=True)


class InstrumentList(Schema):
    instruments = fields.List(fields.Nested(InstrumentOut))
    default_set = fields.List(fields.String())


class InstrumentSetIn(Schema):
    instruments = fields.List(
        fields.String(validate=validate.OneOf(CODES)),
        required=True,
        validate=validate.Length(min=1, max=len(CODES)),
    )


class InstrumentSetOut(Schema):
    client_id = fields.String()
    instruments = fields.List(fields.String())


def _answer_list(code: str):
    return fields.List(
        fields.Integer(allow_none=True, strict=True),
        data_key=code,
        metadata={
            "description": f"{code} answers in item order; null = not answered (WSAS work item: "
            "not applicable). Refused (422 naming the items) when more are missing than "
            "the instrument's scoring rule allows: PHQ-9 and GAD-7 none, WSAS and CORE-10 one"
        },
    )


class Answers(Schema):
    """Keys are the instrument codes: {"PHQ-9": [...], "GAD-7": [...]}."""

    phq9 = _answer_list("PHQ-9")
    gad7 = _answer_list("GAD-7")
    wsas = _answer_list("WSAS")
    core10 = _answer_list("CORE-10")


ANSWER_KEYS = {"phq9": "PHQ-9", "gad7": "GAD-7", "wsas": "WSAS", "core10": "CORE-10"}


class ResponseIn(Schema):
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    session_id = fields.String(validate=validate.Length(min=1, max=100))
    request_id = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "complete this pre-session request"},
    )
    answers = fields.Nested(Answers, required=True)

    @validates_schema
    def _items(self, data, **kwargs):
        answers = data.get("answers") or {}
        if not answers:
            raise ValidationError({"answers": ["answer at least one questionnaire"]})
        errors = {}
        for attr, values in answers.items():
            code = ANSWER_KEYS[attr]
            bad = answer_errors(code, values)
            if isinstance(values, list) and values and all(v is None for v in values):
                bad = {0: "no item answered: a blank form is not a response"}  # issue 15 (#11)
            if bad:
                errors[code] = {str(item): [why] for item, why in bad.items()}
        if errors:
            raise ValidationError({"answers": errors})


class ScoreOut(Schema):
    instrument = fields.String()
    answers = fields.List(fields.Integer(allow_none=True))
    total = fields.Float(allow_none=True)
    band = fields.String(allow_none=True)
    prorated = fields.Boolean()


class AlertRef(Schema):
    alert_id = fields.String()
    instrument = fields.String()
    item = fields.Integer()
    answer = fields.Integer(
        allow_none=True,
        metadata={"description": "null: left unanswered (see `unanswered`) or disposed of"},
    )
    unanswered = fields.Boolean(
        allow_none=True, metadata={"description": "the risk item was left blank"}
    )


class ResponseOut(Schema):
    response_id = fields.String()
    client_id = fields.String()
    request_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    completed_at = fields.DateTime()
    scores = fields.List(fields.Nested(ScoreOut))
    risk_alerts = fields.List(fields.Nested(AlertRef))


class AlertQuery(Schema):
    status = fields.String(
        load_default="open", validate=validate.OneOf(("open", "acknowledged", "all"))
    )
    client_id = fields.String()


class AlertOut(Schema):
    alert_id = fields.String()
    client_id = fields.String()
    therapist_id = fields.String()
    response_id = fields.String()
    instrument = fields.String()
    item = fields.Integer()
    answer = fields.Integer(
        allow_none=True,
        metadata={"description": "null: left unanswered (see `unanswered`) or disposed of"},
    )
    unanswered = fields.Boolean(
        allow_none=True, metadata={"description": "the risk item was left blank"}
    )
    indicated_at = fields.DateTime()
    status = fields.String()
    acknowledged_by = fields.String(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)


class AlertList(Schema):
    alerts = fields.List(fields.Nested(AlertOut))


class AcknowledgeIn(Schema):
    note = free_text(
        4000,
        required=True,
        metadata={"description": "what was done (e.g. client phoned, safety plan reviewed)"},
    )


class AcknowledgeOut(Schema):
    alert_id = fields.String()
    status = fields.String()
    acknowledged_by = fields.String()
    acknowledged_at = fields.DateTime()


class LinkOut(Schema):
    url = fields.String()
    expires_at = fields.DateTime()


class ResendOut(Schema):
    request_id = fields.String()
    resend = fields.Integer(metadata={"description": "1 for the first resend, then 2, ..."})
    resent_at = fields.DateTime()


class RequestQuery(Schema):
    client_id = fields.String(required=True)


class RequestStatus(Schema):
    request_id = fields.String()
    client_id = fields.String()
    session_id = fields.String(allow_none=True)
    session_starts_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    instruments = fields.List(fields.String())
    status = fields.String(
        metadata={"description": "requested | sent | completed | expired | withdrawn"}
    )
    link_issued_at = fields.DateTime(allow_none=True)
    resends = fields.Integer(metadata={"description": "how often staff resent the link"})


class RequestList(Schema):
    requests = fields.List(fields.Nested(RequestStatus))
