"""Message wording: Jinja2 templates, one per kind (the kind's entry in domain/kinds.py
names it), with `subject`, `email` and `sms` (or
`inbox`) blocks. Client messages say nothing clinical — "your appointment", "a short form
before your appointment" — because an email or a text can be read by anyone near the
client's phone (NHS England, "Communicating with patients": keep sensitive content out of
unsecured channels). Times are shown in the practice's zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..domain import KINDS
from .channels import Rendered

TEMPLATES = Path(__file__).parent.parent / "templates"


def _env(tz: ZoneInfo) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def local(value: datetime) -> datetime:
        return value.astimezone(tz)

    env.filters["when"] = lambda v: local(v).strftime("%A %-d %B %Y at %H:%M")
    env.filters["day"] = lambda v: local(v).strftime("%A %-d %B")
    return env


def place(context: dict) -> str:
    modality = context.get("modality")
    if modality == "video":
        link = context.get("video_link")
        return f"By video: {link}" if link else "By video (we will send you the link)"
    if modality == "telephone":
        return "By telephone: we will call you"
    room = context.get("room")
    return f"In person, {room}" if room else "In person at the practice"


class Renderer:
    def __init__(self, practice_name: str, tz: ZoneInfo):
        self.practice_name, self.env = practice_name, _env(tz)

    def render(self, kind: str, channel: str, context: dict) -> Rendered:
        template = self.env.get_template(f"{KINDS[kind].template}.txt")
        values = {
            "practice_name": self.practice_name,
            "place": place(context),
            "dates": [],
            **context,
        }
        ctx = template.new_context(values)
        subject = "".join(template.blocks["subject"](ctx)).strip()
        block = {"sms": "sms", "inbox": "inbox"}.get(channel, "email")
        body = "".join(template.blocks[block](template.new_context(values))).strip()
        return Rendered(subject=subject, body=body + ("\n" if channel == "email" else ""))
