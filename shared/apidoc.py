"""The kernel's request and response headers in every service's OpenAPI document: added to
each signed-in operation once the blueprints are registered (they are handled by the kernel,
not by the routes, so no route declares them)."""

from __future__ import annotations

from flask_smorest import Api

from . import consistency, idempotency

WRITES = ("post", "put", "patch", "delete")

MIN_POSITION = {
    "in": "header",
    "name": consistency.MIN_POSITION_HEADER,
    "required": False,
    "description": (
        "Read your writes: `<service>:<position>[,<service>:<position>...]`, the "
        f"`{consistency.POSITION_HEADER}` values of the caller's earlier writes (any service). "
        "Before answering, the request waits until every view it reads has applied the events "
        "of each service it reads up to that position (services it does not read are ignored), "
        f"at most {consistency.MAX_WAIT:g} s in all; past that it answers anyway with "
        f"`{consistency.STALE_HEADER}`. A malformed value is refused with 400."
    ),
    "schema": {
        "type": "string",
        "maxLength": 1000,
        "pattern": r"^[a-z][a-z0-9_-]{0,39}:[0-9]{1,15}(,[a-z][a-z0-9_-]{0,39}:[0-9]{1,15}){0,15}$",
    },
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": False,
    "description": (
        "Once-only write: a key the caller makes up per request (e.g. a UUID), scoped to the "
        "signed-in user and kept 24 h. Sent again with the same request, the first answer is "
        f"replayed (status, body, Location; `{idempotency.REPLAYED_HEADER}: true`) without doing "
        "the work again; sent with another request it is refused with 422; while the first "
        "request is still running a second one waits for its answer (409 after "
        f"{idempotency.WAIT:g} s). A refused request (4xx) does not keep the key."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
}
POSITION = {
    "description": (
        "`<service>:<position>`: the event position this write produced; send it "
        f"back in `{consistency.MIN_POSITION_HEADER}` to read your write"
    ),
    "schema": {"type": "string"},
}
STALE = {
    "description": (
        f"Present when the {consistency.MAX_WAIT:g} s wait for "
        f"`{consistency.MIN_POSITION_HEADER}` ran out: the `<service>:<position>` "
        "values not yet reached; the answer may not show those writes"
    ),
    "schema": {"type": "string"},
}
REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the "
    "same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}


def document_kernel_headers(api: Api) -> None:
    spec = api.spec
    spec.components.parameter("MinPosition", "header", MIN_POSITION)
    spec.components.parameter("IdempotencyKey", "header", IDEMPOTENCY_KEY)
    spec.components.header("Position", POSITION)
    spec.components.header("Stale", STALE)
    spec.components.header("Replayed", REPLAYED)
    for path in spec._paths.values():  # apispec keeps no public way to edit a registered path
        for method, operation in path.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if operation.get("security") == []:
                continue  # public routes: no caller to scope a key by, no views to wait for
            params = operation.setdefault("parameters", [])
            params.append({"$ref": "#/components/parameters/MinPosition"})
            write = method in WRITES
            if write:
                params.append({"$ref": "#/components/parameters/IdempotencyKey"})
            for status, response in operation["responses"].items():
                if not str(status).startswith("2") or "$ref" in response:
                    continue
                headers = response.setdefault("headers", {})
                headers[consistency.STALE_HEADER] = {"$ref": "#/components/headers/Stale"}
                if write:
                    headers[consistency.POSITION_HEADER] = {"$ref": "#/components/headers/Position"}
                    headers[idempotency.REPLAYED_HEADER] = {"$ref": "#/components/headers/Replayed"}
