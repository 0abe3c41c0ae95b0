"""`python -m tests.faults.dispatcher_proc`: the notifications dispatcher alone as a process,
configured from the environment plus FAULTS_NOTIFY (JSON overrides such as a short claim
lease, which `NotifyConfig.from_env` does not read from the environment)."""

import json
import os

from services.notifications.workers.dispatcher import Dispatcher
from shared import logs
from shared.config import Settings
from shared.run import stop_on_signals

if __name__ == "__main__":
    settings = Settings.from_env()
    settings = settings.with_(
        extra={"notifications": json.loads(os.environ.get("FAULTS_NOTIFY", "{}"))}
    )
    logs.configure("notifications")
    Dispatcher(settings).run(stop_on_signals())
