"""gunicorn settings shared by every service (local `make up`, compose and Kubernetes).

- the app is not preloaded, so MongoDB and Kafka clients are created in each worker after
  the fork (pymongo and kafka-python clients are not fork-safe);
- workers sized for the machine (2 cores here), overridable with WEB_CONCURRENCY;
- Prometheus multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set;
- SIGTERM: workers finish in-flight requests within graceful_timeout, then exit.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, min(4, multiprocessing.cpu_count()))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
preload_app = False
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None  # requests are counted in /metrics and logged by the app as JSON
errorlog = "-"
loglevel = os.environ.get("RAPPORT_LOG_LEVEL", "info").lower()
max_requests = 5000
max_requests_jitter = 500
# gunicorn's control interface (`gunicornc`, gunicorn 24+): its socket's default path is one
# per user, so the second master on a host (make up runs six) logged "Control server error:
# Address ... already in use". Rapport uses none; give GUNICORN_CONTROL_SOCKET a path per
# service to have it.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):  # stale files from a previous run
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """The worker's app is loaded: its heap is kept out of the garbage collector's full
    passes from now on (shared/heap.py)."""
    from shared import heap

    heap.settle()
