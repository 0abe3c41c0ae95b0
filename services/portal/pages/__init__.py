"""The portal's pages (plain Flask views on one blueprint; HTML, not in the OpenAPI)."""
from flask import Blueprint

blueprint = Blueprint("pages", __name__, template_folder="../templates",
                      static_folder="../static", static_url_path="/assets")

from . import common, signin, diary, booking, availability, clients, clinical, measures, risk, dashboard, caseload  # noqa: E402,F401
