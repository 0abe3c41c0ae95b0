"""The portal's pages (plain Flask views on one blueprint; HTML, not in the OpenAPI)."""

from flask import Blueprint

blueprint = Blueprint(
    "pages",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/assets",
)

from . import (
    availability,
    booking,
    caseload,
    clients,
    clinical,
    common,
    course,
    homework,
    dashboard,
    diary,
    measures,
    risk,
    signin,
)
