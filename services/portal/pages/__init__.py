"""The portal's pages (plain Flask views on one blueprint; HTML, not in the OpenAPI)."""

from flask import Blueprint

blueprint = Blueprint(
    "pages",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/assets",
)

# The page modules register their views on `blueprint`, so they are imported after it exists.
from . import (  # noqa: E402, F401
    availability,
    billing,
    booking,
    caseload,
    clients,
    clinical,
    common,
    course,
    dashboard,
    diary,
    enquiries,
    homework,
    measures,
    public_booking,
    public_enquire,
    public_session,
    risk,
    signin,
)
