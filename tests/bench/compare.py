"""Our token endpoint beside its floor and beside a peer, in one run of interleaved windows.

Windows, in turn within each round (the order rotates by one each round), COMPARE_ROUNDS (5)
rounds of COMPARE_WINDOW_SECONDS (4) each after a COMPARE_WARM_SECONDS (1) warm-up of the same
scenario: the token floor (tests/bench/baseline.py's /floor/token on gunicorn, as run.py serves
it); our code exchange and our refresh (the IdP on gunicorn, 2 sync workers, as run.py); the
peer's code exchange and refresh; our password login's credential POST and raw argon2id verifies
in as many processes (tests/bench/rawargon.py); the silent jump between two schools (the whole
redirect chain: tests/bench/jump.py's 4 client processes, the bench's IdP and one
school-instance gunicorn, 2 sync workers, serving schools A and B) and, beside it, chains of
four /healthz requests over the same servers and hops; and, as the serving stack's candidate,
the same floor, code exchange and refresh on granian (WSGI, 2 worker processes with one thread
each, HTTP/1.1 keep-alive; tests/bench/services.py Granian) beside gunicorn, same apps, same
environment, same database and Redis. Load comes from wrk (16 connections, 2
threads) except for the jump; an answer that is not the expected one (200 with access_token
and id_token, plus refresh_token for a refresh; 303 for a login; a jump ending on B's page
with the person's name) fails the run. Codes, refresh tokens and logins are seeded before
each window, one per request.

The peer is panva's oidc-provider 9.x (tests/bench/peer/, versions pinned in package.json and
package-lock.json) on Node's cluster with 2 worker processes, stored in Redis (db
COMPARE_PEER_REDIS_DB, 10, flushed before and after) through the library's example Redis adapter
(ioredis). Configured like us: one client with client_secret_basic; ES256 ID tokens and an ES256
signing key; PKCE required (S256); JWT access tokens (RFC 9068, ES256, 300 s) through resource
indicators, the default resource being the issuer as our tokens' audience is; refresh tokens
for offline_access, rotated on every use; codes and refresh tokens bound to their session
(expiresWithSession), as ours die with it. Seeded through its own models over POST /bench/seed
(served only when the bench sets a key): as many persons as ours (BENCH_PERSONS, 1,000), each
with a Session (the authorization of the client holding the grant) and a Grant (openid profile
email offline_access, also as the resource's scope), then per window genuine AuthorizationCode
records (PKCE S256 challenge of a fresh verifier, redirect URI, nonce, scope openid profile
email, the resource) or RefreshToken records (scope with offline_access), each answered by a
token request the provider accepts.

Where the peer differs from us: no SQL at all — its account lookup (findAccount) is an
in-memory function and nothing of a code exchange or refresh is durable beyond Redis, where we
keep refresh tokens in PostgreSQL and read the account's record; its session is only a Redis
record (no durable session row, no last_seen); the client is in its configuration, not a
cached database row; its ID token carries no acr, amr, auth_time or at_hash unless asked
(ours always does); its Redis adapter makes several round trips per request (find, consume,
grant lookup, session lookup, each save's TTL read and MULTI) where we run one script; Node keeps
wrk's connections alive while gunicorn's sync workers close each one (the floor pays that
too). Node 20 runs it (the library warns it wants 22).

CPU: per window, the CPU of our gunicorn masters and workers, the peer's node processes, the
postgres processes (those serving a connection, and apart the server's own: autovacuum, WAL
writer, checkpointer), the Redis server, finished children (wrk, or the raw argon2id processes) and
the machine (/proc/stat: busy, interrupts, steal; "other" is the rest), in ms per answered
request (per verify, per jump, per chain). A speed probe (tests/bench/jump.py: CPU ms of
50 000 SHA-256) dates the figures.

Goals (printed PASS / FALLS SHORT on the median of the per-round ratios, not an exit status):
code exchanges/s and refreshes/s >= 0.8 x the floor's; machine CPU per code exchange and per
refresh <= 1.5 x the peer's; password logins/s >= 0.85 x raw argon2id verifies/s; the jump's
p50 latency (4 clients) <= 4 x the four-request chain's.

Run: .venv/bin/python -m tests.bench.compare (writes artifacts/bench/compare.md, compare.json).
Environment: COMPARE_ROUNDS, COMPARE_WINDOW_SECONDS, COMPARE_WARM_SECONDS,
COMPARE_CONNECTIONS (16), COMPARE_PEER_REDIS_DB (10), COMPARE_GRANIAN (1; 0 leaves the granian
windows out), COMPARE_LOGIN (1; 0 leaves the login and raw argon2id windows out), COMPARE_JUMP
(1; 0 leaves the jump windows out), COMPARE_BEFORE (checkouts of earlier commits,
comma-separated: each IdP's code exchange and refresh join the windows, on the same database
and environment, for an A/B of each change), COMPARE_STRICT=1 to exit non-zero when a goal is
missed; run.py's DATABASE_URL, REDIS_URL, BENCH_WORKERS, BENCH_PERSONS.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests

from tests.bench import cpu, jump, nodepeer, rawargon, report, run, seed, services, wrk
from tests.bench.jump import redis_server_pids, speed_probe
from tests.bench.report import cell, spread
from tests.support import free_port

OUT = services.ROOT / "artifacts" / "bench"
ROUNDS = services.env_int("COMPARE_ROUNDS", 5)
WINDOW_SECONDS = services.env_float("COMPARE_WINDOW_SECONDS", 4)
WARM_SECONDS = services.env_float("COMPARE_WARM_SECONDS", 1)
CONNECTIONS = services.env_int("COMPARE_CONNECTIONS", 16)
PEER_REDIS_DB = services.env_int("COMPARE_PEER_REDIS_DB", 10)
WITH_LOGIN = os.environ.get("COMPARE_LOGIN", "1") != "0"
WITH_JUMP = os.environ.get("COMPARE_JUMP", "1") != "0"
# The serving stack's candidate: the same floor and IdP on granian (WSGI) beside gunicorn.
WITH_GRANIAN = os.environ.get("COMPARE_GRANIAN", "1") != "0"
# A/B of changes: the same IdP served from other checkouts (the code before each change), on
# the same database, Redis and environment, their windows interleaved with ours.
BEFORE = [Path(p) for p in os.environ.get("COMPARE_BEFORE", "").split(",") if p]
JUMP_CLIENTS = 4
PEER_WORKERS = 2
TIME_LIMIT_SECONDS = 900
GOAL_FLOOR_RATIO = 0.8
GOAL_PEER_CPU_RATIO = 1.5
GOAL_LOGIN_RATIO = 0.85
GOAL_JUMP_RATIO = 4.0
TOKEN_TEXTS = ('"access_token"', '"id_token"')
REFRESH_TEXTS = (*TOKEN_TEXTS, '"refresh_token"')
COMPONENTS = (
    "gunicorn",
    "granian",
    "node",
    "postgres",
    "postgres_bg",
    "redis",
    "load",
    "irq_softirq",
    "steal",
    "other",
    "machine_total",
)


log = services.progress("compare")


@dataclass
class Scenario:
    """One endpoint under load and the pool of single-use inputs it consumes."""

    key: str
    title: str
    url: str
    path: str
    pool: Callable[[int], list[str]]
    expect: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body_has: tuple[str, ...] = TOKEN_TEXTS
    cycle: bool = False
    max_pool: int = 60000
    rate: float = 1500.0


# --- CPU by component --------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """Cumulative CPU seconds per process of each component, of finished children, of all."""

    groups: dict[str, dict[str, float]]
    children: float
    machine: float
    interrupts: float
    steal: float


def _client_backend(pid: int) -> bool:
    """Whether a postgres process serves a client connection ("user db host(port) state"),
    not the server's own work: autovacuum, the WAL writer, the checkpointer, the postmaster."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"(" in title or b"[local]" in title


def probe(roots: dict[str, set[int]], redis_pids: set[int]) -> Probe:
    """Read the counters now: each root's process and its children form one component."""
    names = (*roots, "postgres", "postgres_bg", "redis")
    groups: dict[str, dict[str, float]] = {name: {} for name in names}
    for pid, comm, ppid, seconds in cpu.processes():
        owner = next((n for n, r in roots.items() if pid in r or ppid in r), None)
        if owner is None and comm.startswith("postgres"):
            owner = "postgres" if _client_backend(pid) else "postgres_bg"
        elif owner is None and pid in redis_pids:
            owner = "redis"
        if owner is not None:
            groups[owner][str(pid)] = seconds
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Probe(groups, own.ru_utime + own.ru_stime, *cpu._machine())


def cpu_ms(before: Probe, after: Probe, requests_done: int) -> dict[str, float]:
    """CPU milliseconds per answered request by component between two probes."""
    n = max(requests_done, 1)
    parts = {k: cpu._delta(before.groups[k], v) for k, v in after.groups.items()}
    parts["load"] = parts.get("load", 0.0) + after.children - before.children
    parts["irq_softirq"] = after.interrupts - before.interrupts
    parts["steal"] = after.steal - before.steal
    total = after.machine - before.machine
    parts["other"] = max(0.0, total - sum(parts.values()))
    parts["machine_total"] = total
    return {k: round(1000 * v / n, 3) for k, v in parts.items()}


# --- checks ------------------------------------------------------------------------------------


def _jose_header(token: str) -> dict[str, Any]:
    import base64

    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def check_answer(sc: Scenario, line: str) -> dict[str, Any]:
    """One seeded request outside the windows: ES256 JWTs (and a rotated refresh token)."""
    resp = requests.post(
        sc.url + sc.path, data=dict(parse_qsl(line)), headers=sc.headers, timeout=30
    )
    if resp.status_code != 200:
        raise RuntimeError(f"{sc.key}: {resp.status_code} {resp.text[:300]}")
    body = resp.json()
    access, ident = _jose_header(body["access_token"]), _jose_header(body["id_token"])
    if (access["alg"], access.get("typ"), ident["alg"]) != ("ES256", "at+jwt", "ES256"):
        raise RuntimeError(f"{sc.key}: unexpected token headers {access} {ident}")
    if sc.key.endswith("refresh") and not body.get("refresh_token"):
        raise RuntimeError(f"{sc.key}: no rotated refresh token")
    return {"keys": sorted(body), "access_header": access, "id_header": ident}


# --- windows -----------------------------------------------------------------------------------


@dataclass
class Rig:
    """What the windows need: wrk, a work folder, the process roots and the Redis server."""

    wrk: str
    work: Path
    roots: dict[str, set[int]]
    redis_pids: set[int]
    jump: jump.Setup | None = None
    jump_masters: tuple[int, int] = (0, 0)


def _pools(sc: Scenario, rig: Rig, label: str) -> tuple[Path, Path]:
    """Seed the warm-up's and the window's inputs (one per request) into two files."""
    if sc.cycle:
        one = seed.write_lines(rig.work / f"{sc.key}.txt", sc.pool(1))
        return one, one
    n_warm = math.ceil(sc.rate * (WARM_SECONDS + 1) * 1.5) + 200
    n_main = math.ceil(sc.rate * (WINDOW_SECONDS + 1) * 1.5) + 300
    lines = sc.pool(min(n_warm + n_main, sc.max_pool))
    n_warm = min(n_warm, len(lines) // 3)
    warm = seed.write_lines(rig.work / f"{sc.key}-{label}-warm.txt", lines[:n_warm])
    return warm, seed.write_lines(rig.work / f"{sc.key}-{label}.txt", lines[n_warm:])


class Exhausted(Exception):
    """A wrk thread ran out of seeded inputs (the rate was underestimated)."""


def _wrk(sc: Scenario, rig: Rig, lines: Path, seconds: float) -> wrk.WrkResult:
    res = wrk.run(
        rig.wrk,
        sc.url,
        sc.path,
        lines,
        connections=CONNECTIONS,
        threads=2,
        seconds=seconds,
        expect=sc.expect,
        cycle=sc.cycle,
        headers=sc.headers,
        body_has=sc.body_has,
    )
    if res.socket_errors or res.unexpected_status:
        raise RuntimeError(f"{sc.key}: {res.errors} requests without the expected answer: {res}")
    if res.exhausted:
        raise Exhausted(f"{sc.key}: inputs ran out at {res.rps}/s")
    return res


def window(sc: Scenario, rig: Rig, label: str, seconds: float = WINDOW_SECONDS) -> dict[str, Any]:
    """One window; run again with twice the inputs when they ran out (not an answer's fault)."""
    for attempt in range(3):
        try:
            return _window(sc, rig, f"{label}-{attempt}", seconds)
        except Exhausted as exc:
            sc.rate *= 2
            log(f"  {exc}; again with twice the inputs")
    raise RuntimeError(f"{sc.key}: the inputs ran out three times")


def _window(sc: Scenario, rig: Rig, label: str, seconds: float) -> dict[str, Any]:
    """Seed, warm up, then measure one window of a scenario."""
    started = time.monotonic()
    warm_file, main_file = _pools(sc, rig, label)
    seeded_s = time.monotonic() - started
    _wrk(sc, rig, warm_file, WARM_SECONDS)
    before = probe(rig.roots, rig.redis_pids)
    res = _wrk(sc, rig, main_file, seconds)
    after = probe(rig.roots, rig.redis_pids)
    sc.rate = max(res.rps, 0.75 * sc.rate, 1.0)
    out = {"rps": res.rps, "cpu_ms": cpu_ms(before, after, res.requests), **_wrk_dict(res)}
    log(
        f"  {sc.key:13} {res.rps:8.1f}/s  machine {out['cpu_ms']['machine_total']:.2f} ms/req"
        f"  (seeded in {seeded_s:.1f} s)"
    )
    return out


def _wrk_dict(res: wrk.WrkResult) -> dict[str, Any]:
    return {
        "requests": res.requests,
        "seconds": res.seconds,
        "p50_ms": res.p50_ms,
        "p99_ms": res.p99_ms,
    }


def argon_window(rig: Rig) -> dict[str, Any]:
    """Raw argon2id verifies in as many processes as gunicorn has workers, for one window."""
    probes: dict[str, Probe] = {}

    def around(when: str, pids: list[int]) -> None:
        probes[when] = probe({**rig.roots, "load": set(pids)}, rig.redis_pids)

    raw = rawargon.measure(run.WORKERS, WINDOW_SECONDS, around)
    rate = raw["verifies_per_s"]
    used = cpu_ms(probes["go"], probes["done"], raw["verifies"])
    out = {"rps": rate, "cpu_ms": used, "raw": raw}
    log(f"  {'raw_argon2':13} {rate:8.1f}/s  ({raw['ms_per_verify']} ms per verify)")
    return out


def jump_window(rig: Rig, mode: str) -> dict[str, Any]:
    """Silent jumps (or chains of four /healthz) from 4 client processes, for one window."""
    assert rig.jump is not None
    res = jump.load(
        rig.jump, rig.jump_masters, JUMP_CLIENTS, WARM_SECONDS, WINDOW_SECONDS, mode, quiet=False
    )
    if res["errors_incl_warmup"] or not res["jumps"]:
        raise RuntimeError(f"{mode}: {res['errors_incl_warmup']} failed: {res['error_samples']}")
    c = res["cpu_ms_per_jump"]
    parts = {
        "gunicorn": c["idp"] + c["school"],
        "postgres": c["postgres"],  # jump.py counts every postgres process as one
        "postgres_bg": 0.0,
        "redis": c["redis"],
        "load": c["client"],
        "other": c["other"],
        "machine_total": c["machine"],
    }
    key = "jump" if mode == "jump" else "chain4"
    log(f"  {key:13} {res['jumps_per_s']:8.1f}/s  p50 {res['p50_ms']:.2f} ms  (c={JUMP_CLIENTS})")
    return {"rps": res["jumps_per_s"], "cpu_ms": parts, "p50_ms": res["p50_ms"], "run": res}


# --- summary -----------------------------------------------------------------------------------


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per scenario: the spread of its rate and of its CPU ms per request by component."""
    out: dict[str, Any] = {}
    for key in rounds[0]:
        wins = [r[key] for r in rounds]
        out[key] = {
            "rps": spread([w["rps"] for w in wins]),
            "p50_ms": spread([w["p50_ms"] for w in wins]) if "p50_ms" in wins[0] else None,
            "cpu_ms": {c: spread([w["cpu_ms"].get(c, 0.0) for w in wins]) for c in COMPONENTS},
        }
    return out


def _versus(
    measure: Callable[[dict[str, Any], str], float], a: str, b: str
) -> Callable[[dict[str, Any]], float]:
    """A round's ratio of one measure of scenario a to that of scenario b."""
    return lambda r: measure(r, a) / measure(r, b)


def ratios(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """The issue's ratios, each computed within a round, then spread over the rounds."""

    def rate(r: dict[str, Any], k: str) -> float:
        return float(r[k]["rps"])

    def mcpu(r: dict[str, Any], k: str) -> float:
        return float(r[k]["cpu_ms"]["machine_total"])

    fns: dict[str, Callable[[dict[str, Any]], float]] = {
        "code_vs_floor": lambda r: rate(r, "code") / rate(r, "floor"),
        "refresh_vs_floor": lambda r: rate(r, "refresh") / rate(r, "floor"),
        "code_cpu_vs_peer": lambda r: mcpu(r, "code") / mcpu(r, "peer_code"),
        "refresh_cpu_vs_peer": lambda r: mcpu(r, "refresh") / mcpu(r, "peer_refresh"),
        "code_rate_vs_peer": lambda r: rate(r, "code") / rate(r, "peer_code"),
        "refresh_rate_vs_peer": lambda r: rate(r, "refresh") / rate(r, "peer_refresh"),
    }
    if "code_granian" in rounds[0]:
        for key in ("floor", "code", "refresh"):
            fns[f"{key}_granian_cpu_vs_gunicorn"] = _versus(mcpu, f"{key}_granian", key)
            fns[f"{key}_granian_rate_vs_gunicorn"] = _versus(rate, f"{key}_granian", key)
        fns["code_granian_cpu_vs_peer"] = _versus(mcpu, "code_granian", "peer_code")
        fns["refresh_granian_cpu_vs_peer"] = _versus(mcpu, "refresh_granian", "peer_refresh")
    for label in [k.removeprefix("code_before_") for k in rounds[0] if k.startswith("code_b")]:
        for key in ("code", "refresh"):
            fns[f"{key}_cpu_vs_{label}"] = _versus(mcpu, key, f"{key}_before_{label}")
            fns[f"{key}_rate_vs_{label}"] = _versus(rate, key, f"{key}_before_{label}")
    if "login" in rounds[0]:
        fns["login_vs_raw_argon2"] = lambda r: rate(r, "login") / rate(r, "raw_argon2")
    if "jump" in rounds[0]:
        fns["jump_vs_chain4_p50"] = lambda r: r["jump"]["p50_ms"] / r["chain4"]["p50_ms"]
        fns["jump_vs_chain4_cpu"] = lambda r: mcpu(r, "jump") / mcpu(r, "chain4")
        fns["chain4_vs_jump_rate"] = lambda r: rate(r, "chain4") / rate(r, "jump")
    return {k: spread([fn(r) for r in rounds]) for k, fn in fns.items()}


def goals(rat: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The issue's goals on the medians of the per-round ratios."""
    rows = [
        ("code exchanges/s >= 0.8 x floor", "code_vs_floor", GOAL_FLOOR_RATIO, True),
        ("refreshes/s >= 0.8 x floor", "refresh_vs_floor", GOAL_FLOOR_RATIO, True),
        ("CPU per code exchange <= 1.5 x peer's", "code_cpu_vs_peer", GOAL_PEER_CPU_RATIO, False),
        ("CPU per refresh <= 1.5 x peer's", "refresh_cpu_vs_peer", GOAL_PEER_CPU_RATIO, False),
        ("password logins/s >= 0.85 x raw argon2id", "login_vs_raw_argon2", GOAL_LOGIN_RATIO, True),
        (
            "silent jump p50 <= 4 x four bare requests'",
            "jump_vs_chain4_p50",
            GOAL_JUMP_RATIO,
            False,
        ),
    ]
    out = []
    for title, key, bound, at_least in rows:
        if key not in rat:
            continue
        s = rat[key]
        ok = s["median"] >= bound if at_least else s["median"] <= bound
        out.append({"goal": title, "ratio": key, **s, "pass": ok})
    return out


# --- report ------------------------------------------------------------------------------------


def tables(result: dict[str, Any]) -> list[str]:
    """Markdown tables: rates and CPU by component; the ratios; the goals."""
    head = "| scenario | answers/s | p50 ms | " + " | ".join(COMPONENTS) + " |"
    lines = [
        "CPU in ms per answered request (per jump, per chain); every cell: median (min–max) "
        "over the rounds.",
        "",
        head,
        "|" + "---|" * (len(COMPONENTS) + 3),
    ]
    for key, s in result["scenarios"].items():
        cells = " | ".join(cell(s["cpu_ms"][c]) for c in COMPONENTS)
        p50 = cell(s["p50_ms"]) if s["p50_ms"] else "–"
        lines.append(f"| {key} | {cell(s['rps'], 1)} | {p50} | {cells} |")
    lines += ["", "| ratio (within each round) | median (min–max) |", "|---|---|"]
    lines += [f"| {k} | {cell(v, 3)} |" for k, v in result["ratios"].items()]
    lines += ["", "| goal | median (min–max) | verdict |", "|---|---|---|"]
    for g in result["goals"]:
        verdict = "PASS" if g["pass"] else "FALLS SHORT"
        lines.append(f"| {g['goal']} | {cell(g, 3)} | {verdict} |")
    return lines


def write(result: dict[str, Any]) -> tuple[Path, Path]:
    """Write compare.json and compare.md."""
    OUT.mkdir(parents=True, exist_ok=True)
    js, md = OUT / "compare.json", OUT / "compare.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    text = [
        "# Token endpoint: floor, ours, peer (interleaved windows)",
        "",
        f"{result['date']}; {m['nproc']} CPUs, {m['cpu_model']}; node {result['peer']['node']}, "
        f"oidc-provider {result['peer']['oidc-provider']}, ioredis {result['peer']['ioredis']}; "
        f"{result['config']['rounds']} rounds of {result['config']['window_seconds']} s windows; "
        f"speed probe {result['speed_probe_ms']} ms (start, end); {result['wall_seconds']} s.",
        "",
        *tables(result),
        "",
        *(f"- {n}" for n in result["notes"]),
        "",
    ]
    md.write_text("\n".join(text))
    return js, md


# --- set-up ------------------------------------------------------------------------------------


@contextmanager
def before_running(b: run.Bench) -> Iterator[dict[str, services.Gunicorn]]:
    """The IdP of each COMPARE_BEFORE checkout on gunicorn beside ours, by its commit."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    servers: dict[str, services.Gunicorn] = {}
    try:
        for tree in BEFORE:
            label = subprocess.run(
                ["git", "-C", str(tree), "rev-parse", "--short=7", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            log_file = OUT / f"gunicorn-before-{label}.log"
            idp = services.Gunicorn(
                "tests.bench.wsgi:app", free_port(), env, run.WORKERS, log_file, tree
            )
            servers[label] = idp
            idp.start().wait_ready()
            log(f"the IdP of {label} ({tree}) on gunicorn at {idp.url}")
        yield servers
    finally:
        for idp in servers.values():
            idp.stop()


@contextmanager
def granian_running(b: run.Bench) -> Iterator[tuple[services.Granian, services.Granian] | None]:
    """The floor and the IdP, the same apps and environment, on granian beside gunicorn."""
    if not WITH_GRANIAN:
        yield None
        return
    assert b.idp.proc is not None
    env = dict(os.environ)
    idp = services.Granian(
        "tests.bench.wsgi:app", free_port(), env, run.WORKERS, OUT / "granian-idp.log"
    )
    base = services.Granian(
        "tests.bench.baseline:app", free_port(), env, run.WORKERS, OUT / "granian-baseline.log"
    )
    try:
        idp.start().wait_ready()
        base.start().wait_ready()
        log(f"granian ({run.WORKERS} workers, 1 thread each): IdP {idp.url}, floor {base.url}")
        yield idp, base
    finally:
        idp.stop()
        base.stop()


@contextmanager
def peer_running() -> Iterator[nodepeer.Peer]:
    """The peer on a free port with its own Redis db, flushed before and after."""
    nodepeer.ensure_modules()
    redis_url = f"redis://127.0.0.1:6379/{PEER_REDIS_DB}"
    services.flush_redis(redis_url)
    peer = nodepeer.Peer(
        free_port(), redis_url, PEER_WORKERS, TIME_LIMIT_SECONDS + 120, OUT / "peer.log"
    )
    try:
        peer.start().wait_ready()
        log(f"peer: oidc-provider on node cluster ({PEER_WORKERS} workers) at {peer.url}")
        yield peer
    finally:
        peer.stop()
        services.flush_redis(redis_url)


@contextmanager
def jump_running(b: run.Bench) -> Iterator[tuple[jump.Setup | None, tuple[int, int]]]:
    """Schools A and B (one school-instance gunicorn) beside the bench's IdP, for the jump."""
    if not WITH_JUMP:
        yield None, (0, 0)
        return
    os.environ.pop("SCHOOL_DATABASE_URL", None)
    env = dict(os.environ)
    ports = (b.idp.port, free_port(), free_port())
    setup = jump.seed(env, ports, run.PERSONS)
    school = jump.MultiBindGunicorn(
        "tests.bench.jump_wsgi:school_app",
        list(ports[1:]),
        env,
        run.WORKERS,
        OUT / "compare-gunicorn-school.log",
    )
    try:
        school.start().wait_ready()
        jump.verify_chain(setup)
        assert b.idp.proc and school.proc
        log(f"schools A and B at {school.url} and port {ports[2]}; a jump verified")
        yield setup, (b.idp.proc.pid, school.proc.pid)
    finally:
        school.stop()


def _ours(
    b: run.Bench, idp_url: str, base_url: str, suffix: str, floor: str, ours: str
) -> list[Scenario]:
    """The floor, our code exchange and our refresh on one serving stack."""
    auth = {"Authorization": b.fx.basic_auth}
    return [
        Scenario(
            f"floor{suffix}",
            floor,
            base_url,
            "/floor/token",
            lambda n: [urlencode({"code": secrets.token_urlsafe(32)})],
            cycle=True,
        ),
        Scenario(
            f"code{suffix}",
            f"{ours}: code exchange",
            idp_url,
            "/token",
            lambda n: seed.codes_pool(b.app, b.fx, n),
            headers=auth,
        ),
        Scenario(
            f"refresh{suffix}",
            f"{ours}: refresh (rotation)",
            idp_url,
            "/token",
            lambda n: seed.refresh_pool(b.app, b.fx, n),
            headers=auth,
            body_has=REFRESH_TEXTS,
        ),
    ]


def scenarios(
    b: run.Bench,
    peer: nodepeer.Peer,
    granian: tuple[services.Granian, services.Granian] | None = None,
    before: dict[str, services.Gunicorn] | None = None,
) -> list[Scenario]:
    """The interleaved scenarios, in their first round's order."""
    peer_fx = seed.Fixture(0, peer.client_id, peer.client_secret, "", [], 0)
    peer_auth = {"Authorization": peer_fx.basic_auth}
    people = peer.seed("people", run.PERSONS, seed.REFRESH_SCOPE)
    out = [
        *_ours(b, b.idp.url, b.base.url, "", "floor: Flask + Redis + SQL + 2 JWTs", "ours"),
        Scenario(
            "peer_code",
            "peer: code exchange",
            peer.url,
            "/token",
            lambda n: list(peer.seed("code", n, seed.CODE_SCOPE, people)),
            headers=peer_auth,
        ),
        Scenario(
            "peer_refresh",
            "peer: refresh (rotation)",
            peer.url,
            "/token",
            lambda n: list(peer.seed("refresh", n, seed.REFRESH_SCOPE, people)),
            headers=peer_auth,
            body_has=REFRESH_TEXTS,
        ),
    ]
    if granian is not None:
        g_idp, g_base = granian
        out += _ours(b, g_idp.url, g_base.url, "_granian", "floor on granian", "ours on granian")
    for label, idp in (before or {}).items():
        out += _ours(b, idp.url, b.base.url, f"_before_{label}", "floor", f"ours at {label}")[1:]
    if WITH_LOGIN:
        out.append(
            Scenario(
                "login",
                "ours: password login (credential POST)",
                b.idp.url,
                "/login",
                lambda n: seed.logins_pool(b.app, b.fx, b.issuer, n),
                expect=303,
                body_has=(),
                max_pool=5000,
                rate=60.0,
            )
        )
    return out


def rotated(items: list[str], r: int) -> list[str]:
    """The round's order: the first round's, rotated by the round's number."""
    k = r % len(items)
    return items[k:] + items[:k]


def measure(scs: list[Scenario], rig: Rig) -> list[dict[str, dict[str, Any]]]:
    """Check each scenario once, warm every one up, then run the interleaved rounds."""
    checks = {sc.key: check_answer(sc, sc.pool(1)[0]) for sc in scs if sc.key != "login"}
    log(f"answers checked: {', '.join(checks)} give ES256 at+jwt access and ES256 ID tokens")
    by_key = {sc.key: sc for sc in scs}
    log("warm-up round (not counted; short windows: they warm the servers and set each rate)")
    for sc in scs:
        window(sc, rig, "w", seconds=max(WARM_SECONDS, 1.0))
    extra = {"raw_argon2": lambda: argon_window(rig)} if WITH_LOGIN else {}
    if rig.jump is not None:
        extra |= {
            "jump": lambda: jump_window(rig, "jump"),
            "chain4": lambda: jump_window(rig, "baseline"),
        }
        jump_window(rig, "jump")
    keys = [*by_key, *extra]
    rounds = []
    for r in range(ROUNDS):
        log(f"round {r + 1}/{ROUNDS}")
        rounds.append(
            {
                k: extra[k]() if k in extra else window(by_key[k], rig, f"r{r}")
                for k in rotated(keys, r)
            }
        )
    return rounds


def _notes(summary: dict[str, Any], probes: list[float]) -> list[str]:
    notes = [
        "Windows are interleaved (the order rotates each round), so a drift of the machine's "
        "speed hits every scenario alike; ratios are taken within each round.",
        "gunicorn: our masters and their workers (the IdP, the floor's server, the schools); "
        "granian: the same IdP and floor on granian (WSGI, one thread a worker, keep-alive); "
        "node: the peer's primary and workers; postgres: the backends serving connections; "
        "postgres_bg: autovacuum, WAL writer, checkpointer (per jump: in postgres); load: wrk, "
        "the raw argon2id processes or the jump's clients; other: the rest of the machine "
        "(for the jump windows also interrupts and this runner).",
        "The peer keeps nothing in SQL (see tests/bench/compare.py's docstring): its CPU per "
        "request is the reference the goal compares our machine total with.",
    ]
    if max(probes) > 1.25 * min(probes):
        notes.insert(0, f"WARNING: the speed probe moved during the run: {probes} ms.")
    busy = [k for k, s in summary.items() if s["cpu_ms"]["other"]["median"] > 0.15 * max(
        s["cpu_ms"]["machine_total"]["median"], 1e-9)]  # fmt: skip
    if busy:
        notes.insert(0, f"WARNING: other work used > 15% of the CPU during {', '.join(busy)}.")
    return notes


def main() -> int:
    """Set up both servers and the peer, run the interleaved windows, report, tear down."""
    wrk_bin = wrk.find_wrk()
    if wrk_bin is None:
        print(wrk.INSTALL_HINT, file=sys.stderr)
        return 2
    services.time_limit(TIME_LIMIT_SECONDS, "the comparison")
    started = time.monotonic()
    probes = [speed_probe()]
    log(f"speed probe: {probes[0]} ms of CPU for 50 000 SHA-256 (lower is faster)")
    try:
        with (
            run.prepared(wrk_bin) as b,
            peer_running() as peer,
            jump_running(b) as (jump_setup, jump_masters),
            granian_running(b) as granian,
            before_running(b) as before,
        ):
            assert b.idp.proc and b.base.proc and peer.proc
            masters = {b.idp.proc.pid, b.base.proc.pid, jump_masters[1]}
            masters |= {s.proc.pid for s in before.values() if s.proc is not None}
            roots = {
                "gunicorn": masters - {0},
                "node": {peer.proc.pid},
                "granian": {s.proc.pid for s in granian or () if s.proc is not None},
            }
            redis_pids = redis_server_pids(b.redis_url)
            rig = Rig(wrk_bin, b.work, roots, redis_pids, jump_setup, jump_masters)
            rounds = measure(scenarios(b, peer, granian, before), rig)
            probes.append(speed_probe())
            machine = report.machine(wrk_bin, b.database_url, b.redis_url)
    finally:
        signal.alarm(0)
    summary = summarise(rounds)
    rat = ratios(rounds)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "peer": {
            "node": nodepeer.node_version(),
            "oidc-provider": nodepeer.package_version("oidc-provider"),
            "ioredis": nodepeer.package_version("ioredis"),
            "workers": PEER_WORKERS,
        },
        "config": {
            "rounds": ROUNDS,
            "window_seconds": WINDOW_SECONDS,
            "warm_seconds": WARM_SECONDS,
            "connections": CONNECTIONS,
            "gunicorn_workers": run.WORKERS,
            "persons": run.PERSONS,
        },
        "speed_probe_ms": probes,
        "scenarios": summary,
        "ratios": rat,
        "goals": goals(rat),
        "rounds": rounds,
        "notes": _notes(summary, probes),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    js, md = write(result)
    print("\n".join(tables(result)))
    for note in result["notes"]:
        print(f"- {note}")
    print(f"written: {js.relative_to(services.ROOT)}, {md.relative_to(services.ROOT)} "
          f"({result['wall_seconds']} s)")  # fmt: skip
    missed = [g for g in result["goals"] if g["pass"] is False]
    return 1 if missed and os.environ.get("COMPARE_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
