"""Schemas of the homework diary: the client's link (issued to staff or notifications, used
by the portal's public page) and the diary entries the therapist reads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from . import free_text, ident, optional_text

TOKEN = fields.String(required=True, validate=validate.Length(min=20, max=100))


class LinkOut(Schema):
    token = fields.String(metadata={"description": "shown once; only its SHA-256 is kept"})
    path = fields.String(metadata={"description": "the portal's page: /homework/{token}"})
    expires_at = fields.DateTime()


class TokenIn(Schema):
    token = TOKEN


class EntryIn(Schema):
    token = TOKEN
    text = free_text(5000, required=True)
    task_id = ident(load_default=None, allow_none=True)


class DoneIn(Schema):
    token = TOKEN
    reflection = optional_text(5000)


class EntryOut(Schema):
    entry_id = fields.String()
    text = fields.String()
    task_id = fields.String(allow_none=True)
    written_at = fields.DateTime()


class OpenTaskOut(Schema):
    task_id = fields.String()
    description = fields.String()
    due_at = fields.DateTime(allow_none=True)
    status = fields.String()
    reflection = fields.String(allow_none=True)


class HomeworkOut(Schema):
    """What the client's page shows: their first name, their tasks, their own entries."""

    given_name = fields.String()
    tasks = fields.List(fields.Nested(OpenTaskOut))
    entries = fields.List(fields.Nested(EntryOut))
    expires_at = fields.DateTime()


class DiaryEntriesOut(Schema):
    client_id = fields.String()
    entries = fields.List(fields.Nested(EntryOut))
    tasks_done = fields.List(
        fields.Nested(OpenTaskOut),
        metadata={"description": "tasks marked done, with the client's reflection"},
    )
