"""The IdP a failover run loads: served over HTTP by werkzeug's threaded server with an `idp
worker` process beside it (its output drained as it comes), both on the run's delivery
schedule, and two schools whose back-channel endpoints are scripted receivers."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.conftest import FaultIdp, fault_idp
from tests.faults.failover.plan import BACKOFF, WORKER_LEASE
from tests.support import Receiver, SchoolClient


@dataclass
class Served:
    """The test's IdP with its worker process (whose output is drained as it comes)."""

    idp: FaultIdp
    worker: subprocess.Popen[bytes]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def drain(self) -> None:
        """Read the worker's output so that its pipe never fills."""
        assert self.worker.stdout is not None
        for line in self.worker.stdout:
            self.output.append(line.decode(errors="replace").rstrip())


@contextmanager
def served_idp(tmp: Path, database_url: str, redis_url: str) -> Iterator[Served]:
    """An IdP served over HTTP (werkzeug's threaded server) and an `idp worker` process, with
    the delivery schedule of plan.py; stopped at the end."""
    idp = fault_idp(tmp, database_url, redis_url, DELIVERY_BACKOFF_SECONDS=BACKOFF)
    try:
        worker = idp.start_worker(
            IDP_DELIVERY_BACKOFF_SECONDS=str(BACKOFF),
            IDP_DELIVERY_LEASE_SECONDS=str(WORKER_LEASE),
        )
        served = Served(idp, worker)
        served.reader = threading.Thread(target=served.drain, daemon=True)
        served.reader.start()
        try:
            yield served
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
            served.reader.join(10)
    finally:
        idp.stop()
        idp.app.extensions["db_engine"].dispose()


@contextmanager
def school_pair(idp: FaultIdp) -> Iterator[tuple[list[SchoolClient], list[Receiver]]]:
    """Two schools whose back-channel endpoints are scripted receivers, closed at the end."""
    receivers = [Receiver(), Receiver()]
    try:
        yield [idp.school(r.url) for r in receivers], receivers
    finally:
        for receiver in receivers:
            receiver.close()
