"""Field helpers shared by the contracts."""

from marshmallow import fields, validate

PERSONAL = {"personal": True}
MODALITIES = ("video", "telephone", "face_to_face")
ROLES = ("admin", "therapist", "clinical_lead", "service", "system")


def utc(**kwargs):
    """A timezone-aware datetime (stored and sent in UTC)."""
    return fields.AwareDateTime(default_timezone=None, **kwargs)


def one_of(values, **kwargs):
    return fields.String(validate=validate.OneOf(values), **kwargs)


def optional(field):
    field.required = False
    field.allow_none = True
    field.load_default = None
    return field
