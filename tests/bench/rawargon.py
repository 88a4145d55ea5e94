"""Raw argon2id verification in N processes for a fixed time: the ceiling for password logins."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

from argon2 import PasswordHasher

from idp.people.accounts import HASHER

TIME_COST, MEMORY_COST, PARALLELISM = 2, 19 * 1024, 1


def hasher() -> PasswordHasher:
    """argon2id with the IdP's parameters (m=19 MiB, t=2, p=1), as idp.people.accounts has."""
    h = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST, parallelism=PARALLELISM)
    assert (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism, HASHER.type) == (
        h.time_cost,
        h.memory_cost,
        h.parallelism,
        h.type,
    ), "IdP argon2 parameters changed"
    return h


def _worker(
    stored: str, password: str, seconds: float, go: Event, out: mp.Queue[tuple[int, float]]
) -> None:
    h = hasher()
    go.wait()
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        h.verify(stored, password)
        n += 1
    out.put((n, time.perf_counter() - start))


def measure(
    processes: int, seconds: float, around: Callable[[str, list[int]], None] | None = None
) -> dict[str, Any]:
    """Verify in a loop in each process; verifies/s in total (around(when, pids): go, done)."""
    ctx = mp.get_context("spawn")
    password = "mets-kask-raw-argon2"
    stored = hasher().hash(password)
    go = ctx.Event()
    out: mp.Queue[tuple[int, float]] = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(stored, password, seconds, go, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process import and build its hasher before the clock starts
    pids = [p.pid for p in procs if p.pid is not None]
    if around:
        around("go", pids)
    go.set()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    if around:
        around("done", pids)
    for p in procs:
        p.join(timeout=10)
    per_process = [n / elapsed for n, elapsed in results]
    return {
        "processes": processes,
        "seconds": seconds,
        "verifies": sum(n for n, _ in results),
        "verifies_per_s": round(sum(per_process), 1),
        "per_process": [round(x, 1) for x in per_process],
        "ms_per_verify": round(1000 * processes / sum(per_process), 2),
        "params": {"type": "argon2id", "m_kib": MEMORY_COST, "t": TIME_COST, "p": PARALLELISM},
    }


def combine(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Average two measurements taken just before and just after the login runs."""
    rate = (before["verifies_per_s"] + after["verifies_per_s"]) / 2
    return {
        "processes": before["processes"],
        "seconds": before["seconds"],
        "verifies_per_s": round(rate, 1),
        "ms_per_verify": round(1000 * before["processes"] / rate, 2),
        "params": before["params"],
        "before": before,
        "after": after,
    }
