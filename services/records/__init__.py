"""Records: clients, assessment, IPT formulation, phases, notes, tasks, discharge."""

from shared.services import ServiceDefinition


def _create_app(settings):
    from .app import create_app

    return create_app(settings)


def _projections():
    import shared.contracts  # noqa: F401  (the scheduling events the projections read)

    from .projections import projections

    return projections()


def _workers(settings):
    from .workers import make_completer, make_sweeper

    return [make_completer(settings).run, make_sweeper(settings).run]


def _dispose(settings, client_id):
    """The client's homework links go with the record (shared.disposal)."""
    from shared.web import ServiceContext

    from .queries.homework import HomeworkLinks

    HomeworkLinks(ServiceContext("records", settings).db).forget(client_id)


SERVICE = ServiceDefinition(
    name="records",
    create_app=_create_app,
    projections=_projections,
    workers=_workers,
    dispose=_dispose,
)
