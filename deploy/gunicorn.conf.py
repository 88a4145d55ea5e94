"""gunicorn settings of the IdP and the school instance (`gunicorn -c deploy/gunicorn.conf.py
'idp:create_app()'`). Every value can be overridden by the environment named beside it."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Sync workers, one per core by default: measured here, threaded workers lose throughput to
# the GIL when a client's keep-alive connection sticks to one worker. The proxy in front
# buffers slow clients, so a sync worker is never held by one.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "sync"
workers = int(os.environ.get("GUNICORN_WORKERS", str(os.cpu_count() or 2)))
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# A worker restarts after this many requests (with jitter, so not all at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
# The apps write one JSON access line per request (a route pattern, never a query string
# with a code or token in it); gunicorn's own access log would print the raw request line.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# X-Forwarded-* is interpreted by the app (ProxyFix, STUUDIUM_PROXY_COUNT), not by gunicorn.
forwarded_allow_ips = ""

# Metrics of every worker in one answer: prometheus-client's multiprocess mode needs a
# directory shared by the workers and emptied when the master starts.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / f"stuudium-metrics-{os.getpid()}")
)
os.environ.setdefault("STUUDIUM_LOG_FORMAT", "json")


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory (values of a previous master are stale)."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker: Any) -> None:
    """The worker has loaded the app: its objects (about 140,000, alive for the worker's life)
    leave the collector's care, so a full collection no longer walks them and stalls a request
    for 100 ms or more (measured on the 2-core VM)."""
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges no longer count (its counters do)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this master made for itself (a configured one stays)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
