"""The measures service's reads: instruments, risk alerts and request status (staff.py), a
client's scores, trajectory, outcomes and FHIR export (clients.py, fhir.py), outcome
dashboards (dashboards.py) and a therapist's caseload (caseload.py). access.py says who may
see which client."""

from . import caseload, clients, dashboards, staff

BLUEPRINTS = [staff.blp, clients.blp, dashboards.blp, caseload.blp]
