"""Request and response schemas (marshmallow); flask-smorest documents them in /openapi.json.
Nothing here names an instrument: which codes exist, how many items each has and how many
may be missing are read from the registry (domain/instruments.py) when a request arrives."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.inputs import Registered, day, free_text

from .domain import INSTRUMENTS, answer_errors


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
    # the dicts say "from" (a keyword in Python): without `attribute` it was never dumped
    from_ = fields.Float(data_key="from", attribute="from")
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
    max_missing = fields.Integer(
        metadata={"description": "items that may be left blank and the form still scored"}
    )
    caseness = fields.Float(allow_none=True)
    caseness_label = fields.String(
        allow_none=True, metadata={"description": "what the caseness line is called"}
    )
    loinc_total = fields.String(allow_none=True)


class InstrumentList(Schema):
    instruments = fields.List(fields.Nested(InstrumentOut))
    default_set = fields.List(fields.String())


def _known(code: str) -> None:
    if code not in INSTRUMENTS:
        raise ValidationError(f"unknown instrument {code!r}: see GET /instruments")


def _at_most_all(codes: list) -> None:
    if len(codes) > len(INSTRUMENTS):
        raise ValidationError(f"at most {len(INSTRUMENTS)} questionnaires")


class InstrumentSetIn(Schema):
    instruments = fields.List(
        fields.String(validate=Registered(INSTRUMENTS)),
        required=True,
        validate=[validate.Length(min=1), _at_most_all],
    )


class InstrumentSetOut(Schema):
    client_id = fields.String()
    instruments = fields.List(fields.String())


class AnswerSheets(fields.Dict):
    """{instrument code: [answer or null, ...]}: each code one the registry knows, each
    list of whole numbers in item order (null = not answered)."""

    def __init__(self, **kwargs):
        values = fields.List(fields.Integer(allow_none=True, strict=True))
        super().__init__(keys=fields.String(), values=values, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        out, errors = {}, {}
        for code, answers in value.items():
            try:
                _known(code)
                out[code] = self.value_field.deserialize(answers)
            except ValidationError as err:
                errors[code] = err.messages
        if errors:
            raise ValidationError(errors)
        return out


class ResponseIn(Schema):
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    session_id = fields.String(validate=validate.Length(min=1, max=100))
    request_id = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "complete this pre-session request"},
    )
    answers = AnswerSheets(
        required=True,
        metadata={
            "description": "{instrument code: answers in item order}; null = not answered "
            "(e.g. WSAS work item: not applicable). Refused (422 naming the items) when more "
            "are missing than the instrument's scoring rule allows (`max_missing` in "
            "GET /instruments)"
        },
    )

    @validates_schema
    def _items(self, data, **kwargs):
        answers = data.get("answers") or {}
        if not answers:
            raise ValidationError({"answers": ["answer at least one questionnaire"]})
        errors = {}
        for code, values in answers.items():
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


class AlertOut(AlertRef):
    client_id = fields.String()
    therapist_id = fields.String()
    response_id = fields.String()
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


# -- reads: a client's measures, dashboards, caseload ------------------------------------
class ResponseRow(Schema):
    response_id = fields.String()
    request_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    session_number = fields.Integer(allow_none=True)
    episode_id = fields.String()
    source = fields.String()
    completed_at = fields.DateTime()
    scores = fields.List(fields.Nested(ScoreOut))


class ResponseRows(Schema):
    client_id = fields.String()
    responses = fields.List(fields.Nested(ResponseRow))


class Point(Schema):
    at = fields.DateTime()
    session_id = fields.String(allow_none=True)
    session_number = fields.Integer(allow_none=True)
    total = fields.Float(allow_none=True)
    band = fields.String(allow_none=True)
    prorated = fields.Boolean(allow_none=True)


class Series(Schema):
    instrument = fields.String()
    caseness = fields.Float(allow_none=True, metadata={"description": "clinical threshold line"})
    total_range = fields.List(fields.Integer())
    bands = fields.List(fields.Dict())
    points = fields.List(fields.Nested(Point))


class Trajectory(Schema):
    client_id = fields.String()
    series = fields.List(fields.Nested(Series))


class Pair(Schema):
    first = fields.Float(allow_none=True)
    last = fields.Float(allow_none=True)
    change = fields.Float(allow_none=True)


class Outcome(Schema):
    episode_id = fields.String()
    course_id = fields.String(allow_none=True)
    therapist_id = fields.String()
    phq9 = fields.Nested(Pair)
    gad7 = fields.Nested(Pair)
    attended_sessions = fields.Integer()
    finished_treatment = fields.Boolean()
    caseness_at_start = fields.Boolean(allow_none=True)
    recovered = fields.Boolean(allow_none=True)
    reliable_improvement = fields.Boolean(allow_none=True)
    reliable_deterioration = fields.Boolean(allow_none=True)
    reliable_recovery = fields.Boolean(allow_none=True)
    first_measured_at = fields.DateTime(allow_none=True)
    last_measured_at = fields.DateTime(allow_none=True)


class Outcomes(Schema):
    client_id = fields.String()
    outcomes = fields.List(fields.Nested(Outcome))


class FhirBundle(Schema):
    resourceType = fields.String()
    type = fields.String(metadata={"description": "`collection`"})
    entry = fields.List(
        fields.Dict(),
        metadata={"description": "{fullUrl, resource}; references are relative to fullUrl"},
    )


class Rate(Schema):
    count = fields.Integer()
    of = fields.Integer(metadata={"description": "the cases behind the rate (denominator)"})
    rate = fields.Float(allow_none=True)


class Summary(Schema):
    courses = fields.Integer()
    finished_with_paired_scores = fields.Integer()
    recovery = fields.Nested(Rate)
    reliable_recovery = fields.Nested(Rate)
    reliable_improvement = fields.Nested(Rate)
    reliable_deterioration = fields.Nested(Rate)


class Group(Summary):
    key = fields.String()


class TherapistDashboard(Schema):
    therapist_id = fields.String()
    summary = fields.Nested(Summary)
    national = fields.Dict(keys=fields.String(), values=fields.Float())
    courses = fields.List(fields.Nested(Outcome))


class PracticeQuery(Schema):
    from_ = day(data_key="from", required=True)
    to = day(required=True)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError({"to": ["must not be before from"]})


class Month(Schema):
    month = fields.String(
        metadata={"description": "YYYY-MM (UTC) the courses' last paired measure fell in"}
    )
    practice = fields.Nested(Summary)
    by_therapist = fields.List(fields.Nested(Group))
    by_problem_area = fields.List(fields.Nested(Group))


class PracticeDashboard(Schema):
    period = fields.Dict()
    practice = fields.Nested(Summary)
    by_therapist = fields.List(fields.Nested(Group))
    by_problem_area = fields.List(fields.Nested(Group))
    by_month = fields.List(
        fields.Nested(Month),
        metadata={"description": "the same figures month by month, for charts over time"},
    )
    national = fields.Dict(keys=fields.String(), values=fields.Float())
    notes = fields.List(fields.String())


class Latest(Schema):
    instrument = fields.String()
    total = fields.Float(allow_none=True)
    band = fields.String(allow_none=True)
    prorated = fields.Boolean(allow_none=True)
    at = fields.DateTime()
    session_number = fields.Integer(allow_none=True)


class OpenAlert(AlertRef):
    indicated_at = fields.DateTime()


class ClientMeasures(Schema):
    client_id = fields.String()
    latest = fields.List(fields.Nested(Latest))
    open_alerts = fields.List(fields.Nested(OpenAlert))


class CaseloadMeasures(Schema):
    therapist_id = fields.String()
    clients = fields.List(fields.Nested(ClientMeasures))
