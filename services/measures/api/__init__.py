"""The measures service's writes: staff routes (staff.py) and the client's questionnaire at
an expiring link (form.py, public HTML)."""

from . import form, staff

BLUEPRINTS = [staff.blp, form.blp]
