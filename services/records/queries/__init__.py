"""The records API's reads and what shapes each reader's view: `views` (contact or full
record), `clients` (list, record as of, history, export), `care` (notes, a task),
`reports` (caseload, timeline, audit trail). Clinical reads are audited here. The blueprints
of `clients` and `care` carry the writes of the same resources too (api/)."""

from . import care, clients, enquiries, homework, reports

BLUEPRINTS = [
    clients.blp,
    care.blp,
    care.tasks_blp,
    reports.blp,
    enquiries.blp,
    homework.homework_blp,
]
