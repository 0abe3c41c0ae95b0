"""The measures service's writes: staff routes (staff.py, on the blueprint of queries/staff.py
beside the reads of the same resources) and the client's questionnaire at an expiring link
(form.py, public HTML: the form and its answer are one resource of their own)."""

from . import form, staff  # noqa: F401  (importing staff adds its routes to queries.staff.blp)

BLUEPRINTS = [form.blp]
