"""The four services together: each app, the measures API over real HTTP (notifications
fetches links from it), every relay, consumer and loop on background threads, a real SMTP
server."""

import threading

import pytest
from werkzeug.serving import make_server

from shared import services
from testkit.plugin import service_workers
from testkit.procs import free_port

FOUR = ("scheduling", "records", "measures", "notifications")


@pytest.fixture
def mail():
    from services.notifications.devmail import MailSink

    sink = MailSink(free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture
def practice(settings, mail, workers, monkeypatch):
    monkeypatch.setenv("RAPPORT_QUIET_HOURS", "off")  # the test may run at any hour
    port = free_port()
    s = settings.with_(
        service_urls={**settings.service_urls, "measures": f"http://127.0.0.1:{port}"},
        extra={
            "notifications": {
                "smtp_port": mail.port,
                "lead_email": "lead@practice.test",
                "poll_seconds": 0.1,
                "backoff_seconds": 0.3,
                "quiet_hours": "off",
                "measures_url": f"http://127.0.0.1:{port}",
            }
        },
    )
    apps = {name: services.load(name).create_app(s) for name in FOUR}
    server = make_server("127.0.0.1", port, apps["measures"], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workers.start(*[loop for name in FOUR for loop in service_workers(s, name)])
    clients = {name: app.test_client() for name, app in apps.items()}
    clients["apps"], clients["settings"], clients["mail"] = apps, s, mail
    yield clients
    server.shutdown()
