"""The benchmark's record: the machine, a readable table, results.json and results.md."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "flask",
    "authlib",
    "joserfc",
    "sqlalchemy",
    "psycopg",
    "redis",
    "gunicorn",
    "argon2-cffi",
    "cryptography",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (
        (out.stdout or out.stderr).strip().splitlines()[0]
        if (out.stdout or out.stderr)
        else "unknown"
    )


def machine(wrk: str, database_url: str, redis_url: str) -> dict[str, Any]:
    """Describe the machine and the software the figures were measured with."""
    import psycopg
    import redis

    pg = "unknown"
    try:
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as c:
            row = c.execute("SHOW server_version").fetchone()
            pg = str(row[0]) if row else pg
    except psycopg.Error:
        pass
    try:
        rv = str(redis.Redis.from_url(redis_url).info("server").get("redis_version"))
    except redis.RedisError:
        rv = "unknown"
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "redis": rv,
        "wrk": _version_of([wrk, "--version"]).split(" Copyright")[0],
        "packages": versions,
    }


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def spread(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def cell(s: dict[str, float], digits: int = 2) -> str:
    """A spread as 'median (min–max)'."""
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(results: dict[str, Any]) -> list[str]:
    """The figures as aligned text rows (also used, with pipes, for the Markdown)."""
    rows = [
        (
            "scenario",
            "peak req/s",
            "conns",
            "errors",
            "p50@c4 ms",
            "p99@c4 ms",
            "req/s@c4",
            "errors@c4",
            "vs baseline",
        )
    ]
    for sc in results["scenarios"]:
        peak, c4 = sc["peak"], sc["c4"]
        rows.append(
            (
                sc["title"],
                f"{peak['rps']:.1f}",
                str(peak["connections"]),
                str(peak["errors"]),
                f"{c4['p50_ms']:.2f}",
                f"{c4['p99_ms']:.2f}",
                f"{c4['rps']:.1f}",
                str(c4["errors"]),
                f"{sc['vs_baseline']:.2f}" if sc.get("vs_baseline") is not None else "-",
            )
        )
    raw = results["argon2_raw"]
    rows.append(
        (
            f"raw argon2id verify ({raw['processes']} proc., mean)",
            f"{raw['verifies_per_s']:.1f}",
            "-",
            "0",
            f"{raw['ms_per_verify']:.2f}*",
            "-",
            "-",
            "-",
            "-",
        )
    )
    return [_fmt(r) for r in rows]


CPU_PARTS = (
    "gunicorn_workers",
    "postgres",
    "redis",
    "wrk",
    "irq_softirq",
    "steal",
    "other",
    "machine_total",
)


def cpu_table(results: dict[str, Any]) -> list[str]:
    """CPU milliseconds per request at peak, by component."""
    rows = [("CPU ms per request at peak", *CPU_PARTS)]
    for sc in results["scenarios"]:
        c = sc["cpu_ms_per_request_at_peak"]
        rows.append((sc["title"], *(f"{c[k]:.3f}" for k in CPU_PARTS)))
    return [
        "  ".join(
            col.ljust(44) if i == 0 else col.rjust(max(len(k), 6))
            for i, (col, k) in enumerate(zip(r, ("", *CPU_PARTS), strict=True))
        )
        for r in rows
    ]


def _fmt(row: tuple[str, ...]) -> str:
    widths = (44, 11, 6, 7, 10, 10, 9, 10, 11)
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(row, widths, strict=True))
    )


def goals_lines(results: dict[str, Any]) -> list[str]:
    """One line per goal with its mark."""
    return [f"[{_mark(g['pass'])}] {g['goal']}: {g['measured']}" for g in results["goals"]]


def markdown(results: dict[str, Any]) -> str:
    """results.md."""
    m = results["machine"]
    lines = [
        "# Stuudium ID benchmarks",
        "",
        f"- date: {results['date']}",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, Linux {m['kernel']}, "
        f"Python {m['python']}",
        f"- services: PostgreSQL {m['postgresql']}, Redis {m['redis']}; load generator {m['wrk']}",
        f"- server: gunicorn {m['packages']['gunicorn']}, {results['config']['workers']} sync "
        f"workers, on 127.0.0.1 with the load generator on the same machine",
        f"- load average before/after: {results['loadavg_before']} / {results['loadavg_after']}",
        f"- baseline measured again at the end: "
        f"{results['baseline_again_at_end']['rps']:.1f} req/s "
        f"({100 * results['baseline_again_at_end']['drift']:+.0f}%)",
        f"- runs: peak = wrk -t2 -c{results['config']['peak_connections']} "
        f"{results['config']['peak_seconds']} s; latency = wrk -t2 -c4 "
        f"{results['config']['c4_seconds']} s; each after a {results['config']['warm_seconds']}"
        " s warm-up; every code and refresh token is used once",
        "",
        "## Goals",
        "",
        *[f"- **{_mark(g['pass'])}** {g['goal']}: {g['measured']}" for g in results["goals"]],
        "",
        "## Figures",
        "",
        "| scenario | peak req/s | conns | errors | p50 @c4 (ms) | p99 @c4 (ms) | req/s @c4 "
        "| errors @c4 | vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in results["scenarios"]:
        peak, c4 = sc["peak"], sc["c4"]
        ratio = f"{sc['vs_baseline']:.2f}" if sc.get("vs_baseline") is not None else "-"
        lines.append(
            f"| {sc['title']} | {peak['rps']:.1f} | {peak['connections']} | "
            f"{peak['errors']} | {c4['p50_ms']:.2f} | {c4['p99_ms']:.2f} | "
            f"{c4['rps']:.1f} | {c4['errors']} | {ratio} |"
        )
    raw = results["argon2_raw"]
    lines += [
        f"| raw argon2id verify, {raw['processes']} processes | {raw['verifies_per_s']:.1f} | - "
        f"| 0 | {raw['ms_per_verify']:.2f} per verify | - | - | - | - |",
        "",
        f"Raw argon2id verifies/s just before the logins: {raw['before']['verifies_per_s']}, "
        f"just after: {raw['after']['verifies_per_s']} (the table shows their mean).",
        "",
        "## CPU per request at peak (ms, all processes; PostgreSQL and Redis include "
        "whatever else used them meanwhile)",
        "",
        "| scenario | " + " | ".join(CPU_PARTS) + " |",
        "|---|" + "---:|" * len(CPU_PARTS),
        *[
            f"| {sc['title']} | "
            + " | ".join(f"{sc['cpu_ms_per_request_at_peak'][k]:.3f}" for k in CPU_PARTS)
            + " |"
            for sc in results["scenarios"]
        ],
        "",
        "Errors count socket errors, timeouts, unexpected statuses (a login must answer 303; a "
        "200 is the form with an error) and exhausted pools of single-use inputs.",
        "",
        "## Ratios",
        "",
        *[f"- {name}: {value}" for name, value in results["ratios"].items()],
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in results["notes"]],
        "",
    ]
    return "\n".join(lines)


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and results.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "results.json"
    md = out_dir / "results.md"
    js.write_text(json.dumps(results, indent=2) + "\n")
    md.write_text(markdown(results))
    return js, md


def write_record(
    out_dir: Path, name: str, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str]
) -> tuple[Path, Path]:
    """Write <name>.json, then <name>.md from `markdown`, and print the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{name}.json", out_dir / f"{name}.md"
    js.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    md.write_text(text)
    print(text)
    return js, md
