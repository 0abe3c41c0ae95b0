"""gunicorn entry point: `gunicorn services.records.wsgi:app` (no Kafka client here)."""

from shared.config import Settings

from .app import create_app

app = create_app(Settings.from_env())
