"""Where the CPU goes during a run: gunicorn workers, PostgreSQL, Redis, wrk and the rest.

Read from /proc (Linux): per-process user+system time of the server's workers, of every
postgres and redis-server process, of finished children (wrk) and of the whole machine.
PostgreSQL and Redis are shared with anything else running, so their figures include it.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(comm, ppid, cpu seconds) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def processes() -> Iterator[tuple[int, str, int, float]]:
    """(pid, comm, ppid, cpu seconds) of every process still there when read."""
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (st := _stat(pid)) is not None:
            yield int(pid), *st


def _machine() -> tuple[float, float, float]:
    """CPU seconds of the whole machine (all CPUs): not idle, in interrupts, stolen by the
    hypervisor."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (sum(f[:8]) - f[3] - f[4]) / TICK, (f[5] + f[6]) / TICK, f[7] / TICK


@dataclass(frozen=True)
class Snapshot:
    """Cumulative CPU seconds: per process of each component, and of the machine."""

    workers: dict[str, float]
    postgres: dict[str, float]
    redis: dict[str, float]
    children: float
    machine: float
    interrupts: float
    steal: float


def snapshot(master_pid: int) -> Snapshot:
    """Read the counters now."""
    workers: dict[str, float] = {}
    postgres: dict[str, float] = {}
    redis: dict[str, float] = {}
    for pid, comm, ppid, cpu in processes():
        if ppid == master_pid:
            workers[str(pid)] = cpu
        elif comm.startswith("postgres"):
            postgres[str(pid)] = cpu
        elif comm.startswith("redis-server"):
            redis[str(pid)] = cpu
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(workers, postgres, redis, own.ru_utime + own.ru_stime, *_machine())


def _delta(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU used in between by the processes alive at the end (a process that exited
    meanwhile, such as another client's PostgreSQL backend, is left out)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    """CPU milliseconds per request by component between two snapshots (wrk is the only
    child that finishes in between)."""
    n = max(requests, 1)
    parts = {
        "gunicorn_workers": _delta(before.workers, after.workers),
        "postgres": _delta(before.postgres, after.postgres),
        "redis": _delta(before.redis, after.redis),
        "wrk": after.children - before.children,
        "irq_softirq": after.interrupts - before.interrupts,
        "steal": after.steal - before.steal,
    }
    total = after.machine - before.machine
    parts["other"] = max(0.0, total - sum(parts.values()))
    parts["machine_total"] = total
    return {k: round(1000 * v / n, 3) for k, v in parts.items()}
