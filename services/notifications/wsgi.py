"""gunicorn entry point: `gunicorn services.notifications.wsgi:app`."""

from shared.config import Settings

from .app import create_app

app = create_app(Settings.from_env())
