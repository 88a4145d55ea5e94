"""Driving wrk (the load generator, outside Python) with pool.lua and reading its figures."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("pool.lua")
INSTALL_HINT = (
    "wrk (the HTTP load generator) is not installed. On Debian/Ubuntu:\n"
    "    sudo apt-get update && sudo apt-get install -y wrk\n"
    "then run `make bench` again."
)


def find_wrk() -> str | None:
    """Return the wrk executable, or None."""
    return shutil.which("wrk")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and every kind of error."""

    connections: int
    threads: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    socket_errors: int
    non_2xx_3xx: int
    unexpected_status: int
    exhausted: int

    @property
    def errors(self) -> int:
        """Every request that did not get the expected answer."""
        return self.socket_errors + self.unexpected_status + self.exhausted

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        data = asdict(self)
        data["errors"] = self.errors
        return data


def run(
    wrk: str,
    url: str,
    path: str,
    lines: Path,
    *,
    connections: int,
    threads: int,
    seconds: float,
    expect: int,
    cycle: bool = False,
    headers: dict[str, str] | None = None,
    timeout_s: int = 10,
    body_has: tuple[str, ...] = (),
) -> WrkResult:
    """Run wrk POSTing the prepared lines; a body lacking a text of body_has is unexpected."""
    threads = max(1, min(threads, connections))
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(lines),
        str(threads),
        path,
        str(expect),
        "cycle" if cycle else "once",
    ]
    args += [f"{name}: {value}" for name, value in (headers or {}).items()]
    args += [f"+body:{text}" for text in body_has]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    elapsed = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        threads=threads,
        requests=raw["requests"],
        seconds=round(elapsed, 3),
        rps=round(raw["requests"] / elapsed, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        max_ms=raw["max_us"] / 1000,
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        non_2xx_3xx=raw["status"],
        unexpected_status=raw["unexpected"],
        exhausted=raw["exhausted"],
    )
