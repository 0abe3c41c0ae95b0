"""The client's questionnaire at an expiring link (public: the token is the credential).
Plain HTML from Jinja2 templates, no JavaScript, no external assets. A wrong, used or
expired token gets the same page with the same status, revealing nothing; attempts are
rate-limited per client address (behind the configured proxies, `RAPPORT_PROXY_HOPS`) and
per link. The token is in the path: it is never logged (see app.py)."""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, request
from flask_smorest import Blueprint
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.auth import public
from shared.domain import Conflict, DomainError
from shared.events import Actor, new_id, utcnow
from shared.eventstore import Metadata

from .. import domain
from ..application.links import token_hash
from ..domain import INSTRUMENTS, answer_errors
from ..queries.access import application, clients, links

blp = Blueprint(
    "questionnaire_form", __name__, description="The client's questionnaire link (public)"
)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_HTML_DOC = {
    "security": [],
    "responses": {
        "404": {
            "description": "unknown, used or expired link: one plain page, so a guessed link "
            "cannot be told from a used one"
        },
        "429": {"description": "too many attempts from this address or on this link"},
    },
}
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "one field per item, named '<instrument>-<item>' "
                    "(e.g. 'PHQ-9-9'), value 0..max, 'na' where the item allows it, or empty (not "
                    "answered: accepted only as far as the instrument's scoring rule "
                    "allows)",
                }
            }
        },
    }
}


def _page(template: str, status: int, **values) -> Response:
    html = _templates.get_template(template).render(
        practice=current_app.config["RAPPORT_SETTINGS"].practice_name, **values
    )
    response = Response(html, status=status, mimetype="text/html")
    # the token is in the URL: never leak it onwards; nothing cached, nothing framed
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def _invalid() -> Response:
    return _page("invalid.html", 404)


def _open(token: str):
    """(link, request state, None) or (None, None, the response to send)."""
    found, now = links(), utcnow()
    per_address = current_app.config["MEASURES_LINK_RATE"]
    per_link = current_app.config["MEASURES_LINK_RATE_PER_LINK"]
    if not (
        found.allow(f"ip:{request.remote_addr or 'unknown'}", now, *per_address)
        and found.allow(f"link:{token_hash(token)}", now, *per_link)
    ):
        return None, None, _page("busy.html", 429)
    link = found.usable(token, now)
    if link is None:
        return None, None, _invalid()
    state = application().request_state(link["request_id"])
    if state.status != "requested" or state.data["expires_at"] <= now:
        return None, None, _invalid()
    return link, state, None


def _form(state, status: int = 200, errors=None, given=None) -> Response:
    client = clients().find_one({"_id": state.data["client_id"]}, {"given_name": 1}) or {}
    chosen = [INSTRUMENTS[c] for c in state.data["instruments"]]
    labels = {
        f"{i.code}-{n}": f"{i.code} question {n}"
        for i in chosen
        for n in range(1, len(i.items) + 1)
    }
    return _page(
        "questionnaire.html",
        status,
        instruments=chosen,
        errors=errors or {},
        given=given or {},
        labels=labels,
        first_name=client.get("given_name"),
    )


def _parse(state, form) -> tuple[dict, dict]:
    """({code: answers}, {field name: message}). A blank item is None: whether the form can
    still be scored is the instrument's rule (answer_errors), the same as for staff."""
    answers, errors = {}, {}
    for code in state.data["instruments"]:
        instrument = INSTRUMENTS[code]
        values = []
        for n in range(1, len(instrument.items) + 1):
            name, raw = f"{code}-{n}", (form.get(f"{code}-{n}") or "").strip()
            if not raw or (raw == "na" and n in instrument.optional_items):
                values.append(None)
            # ASCII digits only: str.isdigit() accepts "²", which int() refuses
            elif raw in _CHOICES[: instrument.item_max + 1]:
                values.append(int(raw))
            else:
                errors[name] = f"please choose one of the answers 0 to {instrument.item_max}"
                values.append(None)
        for n, why in answer_errors(code, values).items():
            errors.setdefault(
                f"{code}-{n}", "please choose an answer" if why.startswith("missing") else why
            )
        answers[code] = values
    return answers, errors


_CHOICES = tuple(str(n) for n in range(10))


@blp.route("/q/<token>", methods=["GET"])
@public
@blp.response(200, content_type="text/html", description="the questionnaire form")
@blp.doc(**_HTML_DOC)
def show(token):
    """The client's questionnaire form."""
    link, state, refused = _open(token)
    return refused or _form(state)


@blp.route("/q/<token>", methods=["POST"])
@public
@blp.response(200, content_type="text/html", description="thank-you page")
@blp.doc(**_HTML_DOC, **_FORM_BODY)
@blp.alt_response(
    422, content_type="text/html", description="the form again, each problem next to its item"
)
def submit(token):
    """Send the answers: scored at once; a second use of the link is refused."""
    link, state, refused = _open(token)
    if refused:
        return refused
    answers, errors = _parse(state, request.form)
    if errors:
        return _form(state, 422, errors, dict(request.form))
    now = utcnow()
    command = domain.CompleteQuestionnaire(
        response_id=new_id(),
        client_id=state.data["client_id"],
        therapist_id=state.data["therapist_id"],
        answers=answers,
        source="link",
        now=now,
    )
    meta = Metadata(
        Actor(f"client:{state.data['client_id']}", "client"),
        correlation_id=request.headers.get("X-Correlation-ID") or new_id(),
    )
    try:
        events = application().complete_request(
            link["request_id"], command, meta, also=links().use(link["_id"], now)
        )
    except Conflict:
        return _invalid()
    except DomainError as err:  # an answer the parser let through but a rule refused
        return _form(
            state,
            422,
            {f"{(err.field or '').split('.', 1)[-1].replace('.', '-')}": err.detail},
            dict(request.form),
        )
    client = clients().find_one({"_id": state.data["client_id"]}, {"given_name": 1}) or {}
    return _page(
        "thanks.html",
        200,
        first_name=client.get("given_name"),
        risk=any(e.type == "RiskIndicated" for e in events),
    )
