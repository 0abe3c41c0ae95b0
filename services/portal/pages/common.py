"""What every page shares: CSRF on every POST, the handling of the services' refusals,
time shown in the practice's zone, and small helpers for the services' list answers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, make_response, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from ..backend import BackendError
from ..security import check_csrf, user_store
from . import blueprint

LONDON = ZoneInfo("Europe/London")
PROBLEM_AREAS = {
    "grief": "Grief",
    "role_dispute": "Role dispute",
    "role_transition": "Role transition",
    "interpersonal_deficits": "Interpersonal sensitivity",
}
PHASES = ("initial", "middle", "ending", "maintenance")


@blueprint.before_request
def _csrf():
    check_csrf()


@blueprint.errorhandler(BackendError)
def _backend_refused(err: BackendError):
    """A GET that the services refuse shows why. A refused form is shown again, on the page
    it came from, with the reason beside the field and what the person typed kept (422)."""
    if request.method == "POST":
        return _form_again(err)
    if err.status in (400, 422):  # what was asked is refused (a malformed id or query): not a
        return render_template(
            "error.html",
            status=400,
            title="Bad request",  # service fault
            detail=err.detail,
        ), 400
    status = err.status if err.status in (403, 404, 409, 503, 504) else 502
    return render_template(
        "error.html", status=status, title=_titles.get(status, "Error"), detail=err.detail
    ), status


def _form_again(err: BackendError):
    """Render the page named by the form's `back` (or the referrer) again, inside this
    request, with `g.form_state` holding the submitted values and the errors. Nothing is
    kept in a cookie or at rest: clinical text never leaves this request."""
    g.form_state = {
        "form": request.form.get("form", ""),
        "values": request.form,
        "errors": err.field_errors,
        "detail": err.detail,
    }
    target = _back()
    path, _, query = target.partition("?")
    headers = {"Cookie": request.headers.get("Cookie", ""), "Host": request.host}
    try:
        with current_app.test_request_context(
            path,
            query_string=query,
            method="GET",
            headers=headers,
            environ_base={"REMOTE_ADDR": request.remote_addr},
        ):
            rule = request.url_rule
            view = current_app.view_functions.get(rule.endpoint) if rule else None
            if view is None or not rule.endpoint.startswith("pages."):
                raise LookupError(path)
            page = make_response(view(**(request.view_args or {})))
    except (LookupError, HTTPException, BackendError):
        # The page cannot be shown again here (it is not a page, or a service it reads is
        # refusing or down just now): say why on the page it is sent back to. A BackendError
        # escaping here was a 500 (found by tests/security/test_portal_fuzz.py).
        for field, reason in err.field_errors.items():
            flash(f"{field or 'form'}: {reason}", "error")
        if not err.field_errors:
            flash(err.detail, "error")
        return redirect(target)
    page.status_code = _form_status(err.status)
    return page


def _form_status(status: int) -> int:
    """The status of a form shown again: the service's refusal as it was, but a service's own
    failure is a 502 from the portal (passing its 500 on made it look like the portal's)."""
    if status in (400, 422):
        return 422
    if 400 <= status < 500 or status in (502, 503, 504):
        return status
    return 502 if status >= 500 else 422


def _submitted(form: str) -> dict | None:
    state = g.get("form_state")
    return state if state and state["form"] == form else None


def form_value(form: str, name: str, default=""):
    """The value the person typed into `name` of `form`, when that form is shown again."""
    state = _submitted(form)
    return state["values"].get(name, default) if state else default


def form_values(form: str, name: str, default=()):
    state = _submitted(form)
    return state["values"].getlist(name) if state else list(default)


def field_error(form: str, name: str) -> Markup:
    """The service's reason beside the field (`id="<form>-<name>-error"`, for aria-describedby)."""
    state = _submitted(form)
    reason = (state or {}).get("errors", {}).get(name) if state else None
    if not reason:
        return Markup("")
    return Markup('<p class="field-error" id="%s-%s-error" role="alert">%s</p>') % (
        form,
        name,
        reason,
    )


def error_ref(form: str, name: str) -> Markup:
    """` aria-describedby` pointing at the field's error, only when there is one (a reference
    to a missing element would be announced as nothing, or flagged)."""
    state = _submitted(form)
    if not (state and state.get("errors", {}).get(name)):
        return Markup("")
    return Markup(' aria-describedby="%s-%s-error" aria-invalid="true"') % (form, name)


def form_error(form: str) -> Markup:
    """What the service said about the form as a whole (a clash, a state that forbids it),
    and field errors for fields the form does not show."""
    state = _submitted(form)
    if not state:
        return Markup("")
    shown = set(state["values"].keys())
    lines = [state["detail"]] if not state["errors"] and state["detail"] else []
    lines += [f"{k or 'form'}: {v}" for k, v in state["errors"].items() if k not in shown]
    if not lines and not state["errors"]:
        return Markup("")  # shown again without a refusal (e.g. a row added to the form)
    if not lines:
        lines = ["Please correct the fields marked below."]
    return Markup('<div class="msg error" role="alert">%s</div>') % Markup("<br>").join(
        escape(x) for x in lines
    )


def form_fields(form: str = "") -> Markup:
    """The hidden fields every portal form carries: the CSRF token, the form's name (so only
    that form is filled in again after an error), the page to show it again on (the portal
    sends no Referer), and the idempotency key."""
    from ..security import csrf_token

    back = (
        request.full_path.rstrip("?")
        if request.method == "GET"
        else form_value(form, "back", _back())
    )
    return (
        Markup(
            '<input type="hidden" name="csrf_token" value="%s">'
            '<input type="hidden" name="form" value="%s">'
            '<input type="hidden" name="back" value="%s">'
        )
        % (csrf_token(), form, back)
    ) + form_key()


def error_summary() -> Markup:
    """At the top of a page shown again after a refused form (the pattern of the GOV.UK
    design system): what was not saved and why, with a link to the form, so the reason is
    seen even where the form is far down the page; the fields carry their own messages too."""
    state = g.get("form_state")
    if not state or not (state["errors"] or state.get("detail")):
        return Markup("")  # a form shown again without a refusal (a row added to it)
    lines = [f"{_label(k)}: {v}" for k, v in state["errors"].items()] or [state["detail"]]
    items_html = Markup("").join(Markup("<li>%s</li>") % line for line in lines)
    link = (
        (Markup(' <a href="#form-%s">Go to the form</a>') % state["form"]) if state["form"] else ""
    )
    return Markup(
        '<div class="error-summary" role="alert" tabindex="-1" id="error-summary">'
        "<h2>This was not saved</h2><ul>%s</ul>%s</div>"
    ) % (items_html, link)


def _label(field: str) -> str:
    return (field or "form").replace("_", " ").capitalize()


def form_key() -> Markup:
    """A hidden form field naming this form submission once: the portal sends it to the
    services as the `Idempotency-Key`, so a second press (or a retry after a timeout) of the
    same form does the work once. A form shown again after an error keeps its key."""
    import uuid

    key = (g.get("form_state") or {}).get("values", {}).get("idempotency_key") or uuid.uuid4().hex
    return Markup('<input type="hidden" name="idempotency_key" value="%s">') % key


_titles = {
    403: "Not available",
    404: "Not found",
    409: "Conflict",
    503: "Service unavailable",
    502: "Service error",
    504: "Timed out",
}


def _back() -> str:
    ref = request.form.get("back") or request.referrer or ""
    parsed = urlparse(ref)
    if parsed.netloc and parsed.netloc != request.host:
        return url_for("pages.home")
    path = parsed.path or url_for("pages.home")
    return path + (f"?{parsed.query}" if parsed.query else "")


def items(answer) -> list:
    """Services answer lists either bare or wrapped ({"items": [...]})."""
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        for key in (
            "items",
            "results",
            "data",
            "sessions",
            "clients",
            "alerts",
            "slots",
            "therapists",
            "notes",
            "tasks",
            "events",
            "history",
            "entries",
        ):
            if isinstance(answer.get(key), list):
                return answer[key]
    return []


def client_names(api) -> dict:
    """{client_id: "Given Family"} from the records list (contact data, not an audited read
    of anyone's clinical record); empty when records is not answering."""
    answer, _ = api.try_get("records", "/clients", default={}, per_page=100)
    return {
        c["client_id"]: f"{c.get('given_name', '')} {c.get('family_name', '')}".strip()
        for c in items(answer)
        if c.get("client_id")
    }


def parse_dt(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local(value, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """In practice time. A stored time at the edge of the calendar (year 1 or 9999 with an
    offset) cannot be converted: it is shown as written rather than breaking the page."""
    parsed = parse_dt(value)
    if not parsed:
        return ""
    try:
        return parsed.astimezone(LONDON).strftime(fmt)
    except (OverflowError, ValueError):
        return parsed.strftime(fmt)


def local_input_to_utc(value: str) -> str:
    """An <input type=datetime-local> value, read as practice time, as a UTC ISO string.
    What is not a time is passed on as typed: the service refuses it with 422 naming the
    field, and the form is shown again with the error beside it."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=LONDON)
        return parsed.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        return value


def form_int(name: str, default: int, low: int, high: int) -> int:
    """A whole number from the posted form, in [low, high]; anything else is refused as the
    services refuse it (422 naming the field, the form shown again), never a 500: `count=abc`
    or `rows=0001-01-01` raised ValueError (issue 15 #8, tests/security/test_portal_fuzz.py),
    and an unbounded `rows` would have had the portal loop over a billion form rows."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if raw.isascii() else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        reason = f"must be a whole number from {low} to {high}"
        raise BackendError(422, f"{name} {reason}.", "portal", [{"field": name, "reason": reason}])
    return value


def age(date_of_birth) -> str:
    try:
        born = date.fromisoformat(str(date_of_birth)[:10])
    except ValueError:
        return ""
    today = date.today()
    return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))


def form_flash_ok(message: str) -> None:
    flash(message, "ok")


@blueprint.app_template_filter("local")
def _local_filter(value, fmt: str = "%a %d %b %Y, %H:%M"):
    return local(value, fmt)


@blueprint.app_template_filter("area")
def _area_filter(value):
    return PROBLEM_AREAS.get(value, (value or "").replace("_", " "))


@blueprint.app_template_filter("num")
def _num(value):
    """17.0 -> 17; 12.5 stays (a pro-rated CORE-10 total)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "—" if value is None else str(value)


@blueprint.app_template_filter("staff")
def _staff(user_id):
    """A staff user's name for an actor id in the services' answers (the portal owns the
    users); other actors (services, the seed) are shown as they are."""
    if not user_id:
        return ""
    names = g.get("portal_staff_names")
    if names is None:
        names = {u["_id"]: u["name"] for u in user_store().users.find({}, {"name": 1})}
        g.portal_staff_names = names
    return names.get(user_id, user_id)


@blueprint.app_template_filter("human")
def _human(value):
    return (str(value) if value is not None else "").replace("_", " ")


for _helper in (
    form_value,
    form_values,
    field_error,
    error_ref,
    form_error,
    form_key,
    form_fields,
    error_summary,
):
    blueprint.add_app_template_global(_helper)


@blueprint.app_context_processor
def _globals():
    return {
        "age": age,
        "PHASES": PHASES,
        "PROBLEM_AREAS": PROBLEM_AREAS,
        "config_demo": current_app.config["RAPPORT_SETTINGS"].demo_mode,
    }
