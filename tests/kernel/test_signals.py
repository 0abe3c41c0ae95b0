"""Worker processes stop cleanly on SIGTERM, again and again (a signal handler that set the
stop event directly could deadlock the process inside `stop.wait()`)."""

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("command", [["relay", "records"], ["consume", "scheduling"]])
def test_a_worker_process_exits_on_sigterm(settings, command):
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "RAPPORT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "RAPPORT_MONGO_URI": settings.mongo_uri,
        "RAPPORT_TOPIC_PREFIX": settings.topic_prefix,
        "RAPPORT_DB_PREFIX": settings.db_prefix,
        "RAPPORT_TOPIC_PARTITIONS": "3",
    }
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.run", *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(4)  # running its loops (and, for consumers, joining their groups)
        assert proc.poll() is None, "the worker started"
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=45) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
