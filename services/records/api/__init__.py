"""The records API's writes, one module per resource: `clients` (registration,
corrections), `care` (the clinical commands, tasks), `retention` (erasure, disposal). Each
route parses, calls the Application and maps the result. `clients` and `care` add their
routes to the blueprints of the same resource in queries/, so a resource is one group in
the OpenAPI document whichever way its routes go."""

from . import care, clients, course, enquiries, homework, retention  # noqa: F401  (importing them adds their routes)

BLUEPRINTS = [retention.blp]
