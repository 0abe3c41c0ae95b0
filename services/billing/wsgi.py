"""gunicorn entry point: `gunicorn services.billing.wsgi:app`."""

from shared.config import Settings

from .app import create_app

app = create_app(Settings.from_env())
