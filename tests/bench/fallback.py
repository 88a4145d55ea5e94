"""The SSO session read from SQL on a Redis miss, against the hot path, measured in one run.

The request is the IdP's silent authorization (`GET /authorize?…&prompt=none` with the SSO
cookie; a 303 to the client's redirect URI with a code, or with error=login_required when the
cookie matches nothing). Five cases, interleaved in rounds (the order turns each round):

- hot: the session's Redis copy is present (the normal path: TOUCH_SESSION, one SQL read,
  the code's SET);
- fallback: the copy was deleted just before (`DEL idp:sess:<hash> idp:sid:<sid>`), so
  `sessions.load` reads the record by the cookie hash (one UPDATE … RETURNING on a
  connection of its own) and writes the copy back (RESTORE_SESSION), then goes on as hot;
- unknown_first: a random cookie never seen before (the UPDATE matches nothing; the cookie
  is marked `idp:nosess:<hash>` for 30 s);
- unknown_marked: a random cookie already marked (TOUCH_SESSION answers gone, nothing else);
- stamp_due: the copy is present but says SQL's last_seen is a step behind (as for a session
  used less than once a SESSION_SEEN_STEP_SECONDS), so the request also stamps last_seen.

The load clients (forked Python processes, raw-socket HTTP/1.1, as tests/bench/jump.py) are
forked once and go through a schedule of short windows, one case after another, the order
turning each round, so that the cases of one round meet nearly the same machine. Each client
owns a share of the sessions and prepares a batch of FALLBACK_BATCH requests with one
pipelined Redis round trip before sending them, one command a request: the deletions
(fallback), the stale copies (stamp_due), the no-session marks (unknown_marked), or deletions
of keys that never exist (hot, unknown_first); so every case pays the same client round trip,
outside each request's latency and outside the IdP's CPU (its time is reported). Per window:
requests/s, p50/p90, CPU ms per request of the IdP's gunicorn (master and workers, from
/proc), of the PostgreSQL cluster, of Redis and of the clients; per round the ratios to hot;
then medians with min–max over the rounds. An in-process census (Flask test client) counts
each case's SQL statements, PostgreSQL and Redis round trips and Redis commands per request,
and measures the app's CPU per request (time.process_time), also interleaved.

Servers: the IdP on gunicorn (sync workers) on a fresh PostgreSQL database
(stuudium_fallback_<pid>, dropped at the end) and Redis db FALLBACK_REDIS_DB (13, flushed
before and after). About 2 minutes; stops itself after 300 s.

Run: .venv/bin/python -m tests.bench.fallback (writes artifacts/bench/fallback.md and
fallback.json; exits 1 on any unexpected answer). Environment: FALLBACK_ROUNDS (12),
FALLBACK_SECONDS (1.2, measured per window), FALLBACK_WARM_SECONDS (0.3), FALLBACK_CONCURRENCY
(4), FALLBACK_WORKERS (2), FALLBACK_PERSONS (256), FALLBACK_BATCH (8), FALLBACK_CENSUS (200
requests a case and round in process), FALLBACK_INPROC_ROUNDS (5), FALLBACK_REDIS_DB (13).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

from tests.bench import report, services
from tests.bench.cpu import _machine as machine_cpu
from tests.bench.cpu import _stat as _proc_stat
from tests.bench.cpu import processes
from tests.bench.jump import (
    JumpError,
    _get,
    _percentile,
    forked,
    machine,
    redis_server_pids,
    speed_probe,
)
from tests.bench.report import cell, spread

OUT = services.ROOT / "artifacts" / "bench"
TIME_LIMIT_SECONDS = 300
UA = "stuudium-fallback-bench"
CASES = ("hot", "fallback", "unknown_first", "unknown_marked", "stamp_due")
TITLES = {
    "hot": "hot: Redis copy present",
    "fallback": "fallback: copy deleted, read from SQL, written back",
    "unknown_first": "unknown cookie, first time (SQL, then marked)",
    "unknown_marked": "unknown cookie, marked in Redis",
    "stamp_due": "copy present, last_seen stamp due",
}
GAP_SECONDS = 0.05  # between windows: the runner reads the copies and CPU counters at a stop
SHAM = "bench:fallback:none:"  # keys that never exist: the other cases' equal round trip

ROUNDS = services.env_int("FALLBACK_ROUNDS", 12)
SECONDS = services.env_float("FALLBACK_SECONDS", 1.2)
WARM_SECONDS = services.env_float("FALLBACK_WARM_SECONDS", 0.3)
CONCURRENCY = services.env_int("FALLBACK_CONCURRENCY", 4)
WORKERS = services.env_int("FALLBACK_WORKERS", 2)
PERSONS = services.env_int("FALLBACK_PERSONS", 256)
BATCH = services.env_int("FALLBACK_BATCH", 8)
CENSUS = services.env_int("FALLBACK_CENSUS", 200)
INPROC_ROUNDS = services.env_int("FALLBACK_INPROC_ROUNDS", 5)
REDIS_DB = services.env_int("FALLBACK_REDIS_DB", 13)


log = services.progress("fallback")


# --- seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sess:
    """A live session: its cookie secret, the Redis keys of its copy, and a stale copy."""

    cookie: str
    copy_key: str
    sid_key: str
    stale_copy: str


@dataclass(frozen=True)
class Marked:
    """A random cookie that matches nothing, and the key of its no-session mark."""

    cookie: str
    mark_key: str
    ttl: int


@dataclass
class Setup:
    """Everything the load and the census need."""

    port: int
    cookie_name: str
    target: str
    redirect_uri: str
    sessions: list[Sess]
    marked: list[Marked]
    redis_url: str
    database_url: str

    @property
    def netloc(self) -> str:
        """The IdP's host:port."""
        return f"127.0.0.1:{self.port}"


def authorize_target(client_id: str, redirect_uri: str) -> str:
    """A silent authorization request (PKCE S256, prompt=none) as a school sends it."""
    from idp.oidc.grants import s256

    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": s256(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "prompt": "none",
    }
    return "/authorize?" + urlencode(query)


def seed(app: Any, port: int, redis_url: str, database_url: str) -> Setup:
    """One school and its client, PERSONS persons with an account and a live session each."""
    import redis

    from idp.people.accounts import create_account
    from idp.sso import sessions
    from idp.store import keys
    from idp.store.sessions import MISS_SECONDS
    from idp.tenants.schools import add_school
    from shared.db import get_db
    from shared.security import sha256_hex

    tag = secrets.token_hex(3)
    with app.app_context():
        db = get_db()
        issued = add_school(
            db, f"fallback-{tag}", "Varukool", f"http://127.0.0.1:9/fb-{tag}", development=True
        )
        client_id, redirect_uri = issued.client.client_id, issued.client.redirect_uris[0]
        school_id = issued.client.school_id
        db.commit()
        accounts = []
        for i in range(PERSONS):
            account = create_account(
                db,
                school_id,
                email=f"fallback{i}-{tag}@example.ee",
                given_name="Mari",
                family_name=f"Varu{i:03d}",
                roles=["parent"],
            )
            accounts.append((account.person_id, account.id))
        db.commit()
    made = []
    with app.test_request_context():
        db = get_db()
        for person_id, account_id in accounts:
            cookie, live = sessions.create(db, person_id, account_id, ["pwd"], "low", UA)
            made.append((cookie, sha256_hex(cookie), live.sid))
    r = redis.Redis.from_url(redis_url)
    found: list[Sess] = []
    for cookie, hashed, sid in made:
        copy_key, sid_key = keys.session(hashed), keys.sid(sid)
        raw = r.get(copy_key)
        assert raw is not None, "a seeded session has no Redis copy"
        stale = {**json.loads(raw), "seen": 0}
        found.append(Sess(cookie, copy_key, sid_key, json.dumps(stale)))
    app.extensions["db_engine"].dispose()  # no pooled connection is forked into the clients
    marked = []
    for _ in range(CONCURRENCY * BATCH):
        cookie = secrets.token_urlsafe(32)
        marked.append(Marked(cookie, keys.no_session(sha256_hex(cookie)), MISS_SECONDS))
    return Setup(
        port,
        app.config["SSO_COOKIE_NAME"],
        authorize_target(client_id, redirect_uri),
        redirect_uri,
        found,
        marked,
        redis_url,
        database_url,
    )


# --- the client ----------------------------------------------------------------------------------


def expected(case: str) -> str:
    """What the redirect to the client must carry."""
    return "error=login_required" if case.startswith("unknown") else "code="


def plan(
    case: str, pipe: Any, mine: list[Sess], marked: list[Marked], k: int, tag: str
) -> list[str]:
    """Queue a batch's preparation on pipe (one command a request); return its cookies."""
    # fallback deletes the copies, stamp_due writes stale ones, unknown_marked sets the marks
    # as the IdP does, hot and unknown_first delete keys that never exist.
    if case == "unknown_marked":
        picked = [marked[(k + j) % len(marked)] for j in range(BATCH)]
        for m in picked:
            pipe.set(m.mark_key, 1, ex=m.ttl)
        return [m.cookie for m in picked]
    picks = [mine[(k + j) % len(mine)] for j in range(BATCH)]
    for j, s in enumerate(picks):
        if case == "fallback":
            pipe.delete(s.copy_key, s.sid_key)
        elif case == "stamp_due":
            pipe.set(s.copy_key, s.stale_copy, xx=True, keepttl=True)
        else:
            pipe.delete(f"{SHAM}{tag}:{j}:a", f"{SHAM}{tag}:{j}:b")
    if case == "unknown_first":
        return [secrets.token_urlsafe(32) for _ in picks]
    return [s.cookie for s in picks]


def ask(setup: Setup, cookie: str) -> tuple[int, str]:
    """One silent authorization request; (status, Location)."""
    address = ("127.0.0.1", setup.port)
    status, location, _body = _get(
        address, setup.netloc, setup.target, {setup.cookie_name: (cookie, "/")}
    )
    return status, location


@dataclass(frozen=True)
class Window:
    """One case's turn: requests from start to stop, figures from measure to stop."""

    case: str
    start: float
    measure: float
    stop: float


def _client(index: int, setup: Setup, windows: list[Window], out: Connection) -> None:
    """A client process: each window's batches until its stop, a started batch finished."""
    # The rest of a batch runs into the next window's warm-up (not measured), so no deleted or
    # stale copy is left for another case.
    import redis

    r = redis.Redis.from_url(setup.redis_url)
    mine = setup.sessions[index::CONCURRENCY]
    marked = setup.marked[index::CONCURRENCY]
    prefix = setup.redirect_uri + "?"
    times = array("d")  # window, t0, t1, ok
    prep = array("d", [0.0] * len(windows))
    samples: list[str] = []
    k = batches = 0
    r.ping()
    for w, window in enumerate(windows):
        want = expected(window.case)
        time.sleep(max(0.0, window.start - time.monotonic()))
        while time.monotonic() < window.stop:
            p0 = time.monotonic()
            pipe = r.pipeline(transaction=False)
            cookies = plan(window.case, pipe, mine, marked, k, f"{index}:{batches}")
            pipe.execute()
            prep[w] += time.monotonic() - p0
            k += BATCH
            batches += 1
            for cookie in cookies:
                t0 = time.monotonic()
                try:
                    status, location = ask(setup, cookie)
                    ok = status == 303 and location.startswith(prefix) and want in location
                    if not ok and len(samples) < 5:
                        samples.append(f"{window.case}: {status} → {location[:120]}")
                except (JumpError, OSError, ValueError) as exc:
                    ok = False
                    if len(samples) < 5:
                        samples.append(f"{window.case}: {type(exc).__name__}: {exc}")
                times.extend((w, t0, time.monotonic(), 1.0 if ok else 0.0))
    out.send((times.tobytes(), prep.tobytes(), samples))
    out.close()


# --- CPU accounting ----------------------------------------------------------------------------

PARTS = ("idp", "postgres", "redis", "clients")


def postmaster_pid(database_url: str) -> int:
    """The PostgreSQL server process of the benchmark's database (a backend's parent)."""
    import psycopg

    with psycopg.connect(database_url) as conn:  # the backend must live while it is read
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        st = _proc_stat(str(row[0]))
    assert st is not None
    return st[1]


def cpu_snapshot(
    master: int, clients: set[int], postmaster: int, redis_pids: set[int]
) -> dict[str, float]:
    """Cumulative CPU seconds: IdP gunicorn, PostgreSQL cluster, Redis, clients, machine."""
    parts = dict.fromkeys(PARTS, 0.0)
    for n, _comm, ppid, cpu in processes():
        if master in (n, ppid):
            parts["idp"] += cpu
        elif n in clients:
            parts["clients"] += cpu
        elif n in redis_pids:
            parts["redis"] += cpu
        elif postmaster in (n, ppid):
            parts["postgres"] += cpu
    parts["machine"] = machine_cpu()[0]  # all but idle and iowait
    return parts


def cpu_ms(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per request by component; 'other' is the rest of the machine."""
    delta = {k: after[k] - before[k] for k in before}
    delta["other"] = max(0.0, delta["machine"] - sum(delta[k] for k in PARTS))
    return {k: round(1000 * v / max(n, 1), 3) for k, v in delta.items()}


# --- the measured schedule ---------------------------------------------------------------------


def rotated(r: int) -> list[str]:
    """The order of the cases in round r (each case takes every position in turn)."""
    n = r % len(CASES)
    return list(CASES[n:] + CASES[:n])


def schedule(first: float) -> list[Window]:
    """ROUNDS rounds of one window per case, back to back."""
    windows = []
    t = first
    for r in range(ROUNDS):
        for case in rotated(r):
            windows.append(Window(case, t, t + WARM_SECONDS, t + WARM_SECONDS + SECONDS))
            t += WARM_SECONDS + SECONDS + GAP_SECONDS
    return windows


def seen_stamps(setup: Setup) -> list[int]:
    """Each copy's `seen` (0 when missing): how many moved tells how many stamps ran."""
    import redis

    raw = redis.Redis.from_url(setup.redis_url).mget([s.copy_key for s in setup.sessions])
    return [int(json.loads(v).get("seen", 0)) if v else 0 for v in raw]


def measure(setup: Setup, master: int) -> list[dict[str, Any]]:
    """Fork the clients once, run the schedule, snapshot CPU per window; a result each."""
    windows = schedule(time.monotonic() + 0.5 + 0.05 * CONCURRENCY)
    marks: list[tuple[dict[str, float], dict[str, float], int]] = []
    with forked(_client, [(i, setup, windows) for i in range(CONCURRENCY)]) as clients:
        postmaster = postmaster_pid(setup.database_url)
        redis_pids = redis_server_pids(setup.redis_url)
        for window in windows:
            time.sleep(max(0.0, window.measure - time.monotonic()))
            before = cpu_snapshot(master, clients.pids, postmaster, redis_pids)
            seen_before = seen_stamps(setup)
            time.sleep(max(0.0, window.stop - time.monotonic()))
            # the copies first: the next window's clients start GAP_SECONDS after this stop
            seen_after = seen_stamps(setup)
            after = cpu_snapshot(master, clients.pids, postmaster, redis_pids)
            stamps = sum(1 for a, b in zip(seen_before, seen_after, strict=True) if a != b)
            marks.append((before, after, stamps))
        results = clients.reports()
    per_window: list[list[float]] = [[] for _ in windows]
    done = [0] * len(windows)
    errors = [0] * len(windows)
    sent = [0] * len(windows)
    prep = [0.0] * len(windows)
    samples: list[str] = []
    for raw, raw_prep, sample in results:
        times, spent = array("d"), array("d")
        times.frombytes(raw)
        spent.frombytes(raw_prep)
        samples += sample
        for w, seconds in enumerate(spent):
            prep[w] += seconds
        for j in range(len(times) // 4):
            w_f, t0, t1, ok = times[4 * j : 4 * j + 4]
            w = int(w_f)
            sent[w] += 1
            window = windows[w]
            if not window.measure <= t1 <= window.stop:
                continue
            if ok == 0.0:
                errors[w] += 1
                continue
            done[w] += 1
            if t0 >= window.measure:
                per_window[w].append(t1 - t0)
    out = []
    for w, window in enumerate(windows):
        latencies = sorted(per_window[w])
        before, after, stamps = marks[w]
        out.append(
            {
                "case": window.case,
                "round": w // len(CASES) + 1,
                "requests": done[w],
                "rps": round(done[w] / SECONDS, 1),
                "errors": errors[w],
                "p50_ms": round(1000 * _percentile(latencies, 0.5), 3),
                "p90_ms": round(1000 * _percentile(latencies, 0.9), 3),
                "cpu_ms": cpu_ms(before, after, done[w]),
                "prep_us_per_request": round(1e6 * prep[w] / max(sent[w], 1), 1),
                "prep_share_of_client_time": round(
                    prep[w] / (CONCURRENCY * (WARM_SECONDS + SECONDS)), 4
                ),
                "stamps_in_window": stamps,
            }
        )
    if samples:
        out[0]["error_samples"] = samples[:10]
    return out


# --- the in-process census ---------------------------------------------------------------------

_TABLE = re.compile(r"\b(?:FROM|UPDATE|INTO)\s+\"?(\w+)", re.IGNORECASE)


class Tally:
    """Round trips and statements of the requests made while `on` is set."""

    def __init__(self) -> None:
        self.on = False
        self.counts: Counter[str] = Counter()

    def add(self, key: str) -> None:
        """Count one event."""
        if self.on:
            self.counts[key] += 1


def _label(query: Any) -> str:
    """'VERB table' of a statement (the first table it names)."""
    text = query.decode() if isinstance(query, bytes) else str(query)
    words = text.split(None, 1)
    verb = words[0].upper() if words else "?"
    table = _TABLE.search(text)
    return f"{verb} {table.group(1)}" if table else verb


@contextmanager
def hooks(tally: Tally) -> Iterator[None]:
    """Count psycopg executes and commands, Redis socket writes and the commands in them."""
    import psycopg
    import redis.connection
    from psycopg import _connection_base

    base = _connection_base.BaseConnection
    conn_cls = redis.connection.AbstractConnection
    saved: list[tuple[Any, str, Any]] = [
        (psycopg.Cursor, "execute", psycopg.Cursor.execute),
        (base, "_exec_command", base._exec_command),
        (conn_cls, "send_packed_command", conn_cls.send_packed_command),
        (conn_cls, "send_command", conn_cls.send_command),
        (conn_cls, "pack_commands", conn_cls.pack_commands),
    ]
    orig = {name: fn for _cls, name, fn in saved}

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        tally.add("pg round trips")
        tally.add(f"sql: {_label(query)}")
        return orig["execute"](self, query, *args, **kwargs)

    def exec_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        tally.add("pg round trips")
        tally.add(f"sql: {_label(command)}")
        return orig["_exec_command"](self, command, *args, **kwargs)

    def send_packed(self: Any, *args: Any, **kwargs: Any) -> Any:
        tally.add("redis round trips")
        return orig["send_packed_command"](self, *args, **kwargs)

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        tally.add(f"redis: {str(args[0]).upper()}")
        return orig["send_command"](self, *args, **kwargs)

    def pack_commands(self: Any, commands: Any) -> Any:
        commands = list(commands)
        for cmd in commands:
            tally.add(f"redis: {str(cmd[0]).upper()}")
        return orig["pack_commands"](self, commands)

    replacement = {
        "execute": execute,
        "_exec_command": exec_command,
        "send_packed_command": send_packed,
        "send_command": send_command,
        "pack_commands": pack_commands,
    }
    try:
        for cls, name, _fn in saved:
            setattr(cls, name, replacement[name])
        yield
    finally:
        for cls, name, fn in saved:
            setattr(cls, name, fn)


class InProcess:
    """The IdP app in this process behind Flask's test client, cases prepared as by the load."""

    def __init__(self, app: Any, setup: Setup) -> None:
        import redis

        self.app = app
        self.setup = setup
        self.client = app.test_client(use_cookies=False)
        self.redis = redis.Redis.from_url(setup.redis_url)
        self.issuer = app.config["ISSUER"]
        self.k = 0

    def batch(self, case: str) -> list[str]:
        """Prepare a batch of a case as the load clients do; its cookies."""
        pipe = self.redis.pipeline(transaction=False)
        cookies = plan(case, pipe, self.setup.sessions, self.setup.marked, self.k, f"p{self.k}")
        pipe.execute()
        self.k += BATCH
        return cookies

    def one(self, cookie: str, case: str) -> None:
        """One request, checked."""
        resp = self.client.get(
            self.setup.target,
            base_url=self.issuer,
            headers={"Cookie": f"{self.setup.cookie_name}={cookie}", "User-Agent": UA},
        )
        location = resp.headers.get("Location", "")
        if resp.status_code != 303 or expected(case) not in location:
            raise RuntimeError(f"{case}: {resp.status_code} → {location[:120]}")

    def cpu_per_request(self, case: str, n: int) -> float:
        """CPU ms per request of this process (time.process_time), preparation excluded."""
        spent, done = 0.0, 0
        while done < n:
            for cookie in self.batch(case):
                t0 = time.process_time()
                self.one(cookie, case)
                spent += time.process_time() - t0
                done += 1
        return 1000 * spent / done

    def census(self, case: str, n: int) -> dict[str, float]:
        """Events per request of a case, counted at the client libraries."""
        tally = Tally()
        done = 0
        with hooks(tally):
            while done < n:
                for cookie in self.batch(case):
                    tally.on = True
                    try:
                        self.one(cookie, case)
                    finally:
                        tally.on = False
                    done += 1
        return {k: round(v / done, 3) for k, v in sorted(tally.counts.items())}


def in_process(app: Any, setup: Setup) -> dict[str, Any]:
    """Census (counts per request), then CPU per request interleaved in rounds."""
    runner = InProcess(app, setup)
    for case in CASES:  # warm every path once
        runner.cpu_per_request(case, BATCH)
    census = {case: runner.census(case, CENSUS) for case in CASES}
    per_round: dict[str, list[float]] = {case: [] for case in CASES}
    for r in range(INPROC_ROUNDS):
        for case in rotated(r):
            per_round[case].append(round(runner.cpu_per_request(case, CENSUS), 3))
    return {"census": census, "cpu_ms": per_round}


# --- summaries and the report --------------------------------------------------------------------


def summarise(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case: medians and ranges over the rounds; ratios to hot, taken per round."""
    rounds: dict[int, dict[str, dict[str, Any]]] = {}
    for w in windows:
        rounds.setdefault(w["round"], {})[w["case"]] = w
    by_round = list(rounds.values())
    metrics: dict[str, Callable[[dict[str, Any]], float]] = {
        "rps": lambda run: float(run["rps"]),
        "p50_ms": lambda run: float(run["p50_ms"]),
        "p90_ms": lambda run: float(run["p90_ms"]),
        "idp_cpu_ms": lambda run: float(run["cpu_ms"]["idp"]),
        "postgres_cpu_ms": lambda run: float(run["cpu_ms"]["postgres"]),
        "redis_cpu_ms": lambda run: float(run["cpu_ms"]["redis"]),
        "clients_cpu_ms": lambda run: float(run["cpu_ms"]["clients"]),
        "other_cpu_ms": lambda run: float(run["cpu_ms"]["other"]),
        "prep_us_per_request": lambda run: float(run["prep_us_per_request"]),
        "prep_share_of_client_time": lambda run: float(run["prep_share_of_client_time"]),
        "stamps_in_window": lambda run: float(run["stamps_in_window"]),
    }
    cases: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for case in CASES:
        cases[case] = {m: spread([f(rd[case]) for rd in by_round]) for m, f in metrics.items()}
        if case == "hot":
            continue
        ratios[f"{case}/hot"] = {
            m: {
                **spread([f(rd[case]) / f(rd["hot"]) for rd in by_round]),
                "per_round": [round(f(rd[case]) / f(rd["hot"]), 3) for rd in by_round],
            }
            for m, f in metrics.items()
            if m in ("rps", "p50_ms", "p90_ms", "idp_cpu_ms", "postgres_cpu_ms")
        }
    return {"cases": cases, "ratios_to_hot": ratios}


def markdown(result: dict[str, Any]) -> str:
    """The human-readable record."""
    m = result["machine"]
    summ = result["summary"]
    lines = [
        "# SSO session fallback to SQL on a Redis miss — benchmark",
        "",
        f"{result['date']} · {m['nproc']} cores ({m['cpu_model']}) · Linux {m['kernel']} · "
        f"Python {m['python']} · PostgreSQL {m['postgresql']} · Redis {m['redis']} · "
        f"gunicorn {m['packages']['gunicorn']} ({WORKERS} sync workers) · "
        f"load average at start {m['load_average_at_start']}",
        "",
        "Request: `GET /authorize?…&prompt=none` with the SSO cookie (303 to the redirect URI "
        "with a code; error=login_required for an unknown cookie). "
        f"{CONCURRENCY} client processes (raw-socket HTTP/1.1, a new connection a request) "
        f"forked once; {ROUNDS} rounds of one window per case, back to back, each window "
        f"{WARM_SECONDS} s of warm-up then {SECONDS} s measured, the case order turning each "
        f"round; {PERSONS} sessions. Figures: median (min–max) over the rounds; ratios are "
        "taken within each round (windows a few seconds apart), then summarised.",
        "",
        "## Per case",
        "",
        "| case | req/s | p50 ms | p90 ms | IdP CPU ms/req | PostgreSQL | Redis | clients |"
        " other | client prep µs/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        c = summ["cases"][case]
        lines.append(
            f"| {TITLES[case]} | {cell(c['rps'], 0)} | {cell(c['p50_ms'])} | "
            f"{cell(c['p90_ms'])} | {cell(c['idp_cpu_ms'], 3)} | "
            f"{c['postgres_cpu_ms']['median']:.3f} | {c['redis_cpu_ms']['median']:.3f} | "
            f"{c['clients_cpu_ms']['median']:.3f} | {c['other_cpu_ms']['median']:.3f} | "
            f"{c['prep_us_per_request']['median']:.0f} |"
        )
    lines += [
        "",
        "CPU ms per request (medians): the IdP's gunicorn (master and workers), the PostgreSQL "
        "cluster serving the database (other databases' work on it included), the Redis "
        "server on 6379 (other db numbers' work included), the load clients; 'other' is the "
        "rest of the machine's CPU in the window (other runs on the machine show there).",
        "",
        "## Ratios to hot (same round)",
        "",
        "| ratio | req/s | p50 latency | p90 latency | IdP CPU ms/req | PostgreSQL CPU ms/req |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in summ["ratios_to_hot"].items():
        lines.append(
            f"| {name} | {cell(r['rps'], 3)} | {cell(r['p50_ms'], 3)} | "
            f"{cell(r['p90_ms'], 3)} | {cell(r['idp_cpu_ms'], 3)} | "
            f"{cell(r['postgres_cpu_ms'], 3)} |"
        )
    ip = result["in_process"]
    hot = ip["cpu_ms"]["hot"]
    lines += [
        "",
        "## In process: the app's CPU per request (Flask test client, time.process_time)",
        "",
        f"{CENSUS} requests a case and round, {INPROC_ROUNDS} rounds, interleaved; "
        "preparation excluded. Ratios taken per round.",
        "",
        "| case | CPU ms/req | ratio to hot |",
        "|---|---|---|",
    ]
    for case in CASES:
        vals = ip["cpu_ms"][case]
        ratio = spread([v / h for v, h in zip(vals, hot, strict=True)])
        lines.append(f"| {TITLES[case]} | {cell(spread(vals), 3)} | {cell(ratio, 3)} |")
    lines += [
        "",
        "## Where the time goes: events per request (counted in process)",
        "",
        "Counted at the client libraries: psycopg cursor executes and transaction commands "
        "(pg round trips), Redis socket writes (round trips; a pipeline is one) and the "
        "commands sent.",
        "",
    ]
    names = sorted({k for c in ip["census"].values() for k in c})
    lines += ["| event | " + " | ".join(CASES) + " |", "|---|" + "---|" * len(CASES)]
    for name in names:
        cells = [f"{ip['census'][case].get(name, 0):g}" for case in CASES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Windows",
        "",
        "| round | case | req/s | p50 ms | p90 ms | IdP CPU ms/req | PostgreSQL | errors | "
        "stamps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in result["windows"]:
        lines.append(
            f"| {w['round']} | {w['case']} | {w['rps']:.0f} | {w['p50_ms']:.2f} | "
            f"{w['p90_ms']:.2f} | {w['cpu_ms']['idp']:.3f} | {w['cpu_ms']['postgres']:.3f} | "
            f"{w['errors']} | {w['stamps_in_window']} |"
        )
    samples = [s for w in result["windows"] for s in w.get("error_samples", [])]
    if samples:
        lines += ["", "## Error samples", ""] + [f"- `{s}`" for s in samples[:10]]
    lines += ["", "## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    lines += [
        f"Settings: {json.dumps(result['settings'])}. Total {result['elapsed_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def notes(result: dict[str, Any]) -> list[str]:
    """How to read the figures."""
    prep = result["summary"]["cases"]
    return [
        f"Each client prepares a batch of {BATCH} requests with one pipelined Redis round trip "
        "before sending them, one command a request: in fallback it deletes the copies "
        "(`DEL idp:sess:<hash> idp:sid:<sid>`), in stamp_due it writes copies whose `seen` is "
        "0 (`SET … XX KEEPTTL`), in unknown_marked it sets the cookies' `idp:nosess` marks as "
        "the IdP does (so they never lapse), in hot and unknown_first it deletes as many keys "
        "that never exist. Every case thus pays the same client round trip. It is outside "
        "each request's latency (the clock starts after it) and outside the IdP's CPU (the "
        "client talks to Redis directly); it lowers every case's offered load alike: "
        "client prep per request and its share of the clients' time, medians over windows: "
        + ", ".join(
            f"{c} {prep[c]['prep_us_per_request']['median']:.0f} µs "
            f"({100 * prep[c]['prep_share_of_client_time']['median']:.1f} %)"
            for c in CASES
        )
        + ". Each client owns its share of the sessions, so nobody else touches a prepared "
        "copy before its request.",
        "A client finishes a batch it started, even past its window's stop: the rest runs in "
        "the next window's warm-up (not measured), so no copy is left deleted or stale for "
        "another case; copies missing at the end: "
        f"{result['copies_missing_after']} (must be 0).",
        "'stamps' counts copies whose `seen` moved within the measured part of a window: in "
        "hot, the last_seen stamps that fell due (a session used a step after its last "
        "stamp); fallback and stamp_due rewrite every copy they touch.",
        "The machine may run other work meanwhile (other benchmarks, fault tests): the ratios "
        "are taken within one round, where the cases met nearly the same conditions; a "
        f"speed probe (CPU ms of 50 000 SHA-256) gave {result['speed_probe_ms']} before and "
        "after the windows.",
        "The in-process census sends the same requests through Flask's test client on the "
        "same database and Redis; its CPU figure is the app's Python side only (plus the test "
        "client's), without gunicorn or the socket; PostgreSQL's and Redis's work is not in "
        "it.",
    ]


# --- main --------------------------------------------------------------------------------------


def verify(setup: Setup) -> None:
    """Check each kind of answer, the fallback's write-back and an unknown cookie's mark."""
    import redis

    from idp.store import keys
    from shared.security import sha256_hex

    r = redis.Redis.from_url(setup.redis_url)
    s = setup.sessions[0]
    status, location = ask(setup, s.cookie)
    assert status == 303 and "code=" in location, (status, location)
    r.delete(s.copy_key, s.sid_key)
    status, location = ask(setup, s.cookie)
    assert status == 303 and "code=" in location, (status, location)
    assert r.exists(s.copy_key, s.sid_key) == 2, "the fallback did not write the copy back"
    cookie = secrets.token_urlsafe(32)
    status, location = ask(setup, cookie)
    assert status == 303 and "error=login_required" in location, (status, location)
    assert r.exists(keys.no_session(sha256_hex(cookie))) == 1, "the unknown cookie is not marked"


def warm(setup: Setup) -> None:
    """A few batches of every case, so each worker has run every path before the first window."""
    import redis

    r = redis.Redis.from_url(setup.redis_url)
    for case in CASES:
        for k in range(0, 4 * WORKERS, BATCH):
            pipe = r.pipeline(transaction=False)
            cookies = plan(case, pipe, setup.sessions, setup.marked, k, f"w{k}")
            pipe.execute()
            for cookie in cookies:
                status, location = ask(setup, cookie)
                if status != 303 or expected(case) not in location:
                    raise RuntimeError(f"{case}: {status} → {location[:120]}")


def main() -> int:
    """Set up, measure the cases in rounds, count in process, write the record, undo all."""
    from tests.support import free_port

    started = time.monotonic()
    limit = (TIME_LIMIT_SECONDS, "the fallback benchmark")
    with services.scratch("fallback", REDIS_DB, log, limit=limit) as scratch:
        database_url, redis_url, work = scratch.database_url, scratch.redis_url, scratch.work
        port = free_port()
        env = services.idp_env(database_url, redis_url, f"http://127.0.0.1:{port}", work / "var")
        os.environ.update(env)
        os.environ.pop("SCHOOL_DATABASE_URL", None)
        from idp import create_app
        from idp.cli import upgrade_database

        app = create_app()
        upgrade_database(app)
        setup = seed(app, port, redis_url, database_url)
        log(f"migrated; one school, {PERSONS} persons with a live session each")
        idp = scratch.own(
            services.Gunicorn(
                "tests.bench.wsgi:app",
                port,
                {**os.environ, **env},
                WORKERS,
                OUT / "fallback-idp.log",
            )
        )
        idp.start()
        idp.wait_ready()
        assert idp.proc is not None
        verify(setup)
        log(f"gunicorn ({WORKERS} sync workers) on {idp.url}; every case's answer verified")
        info = machine(database_url, redis_url)
        warm(setup)
        probe_before = speed_probe()
        log(
            f"{ROUNDS} rounds x {len(CASES)} cases, windows of {WARM_SECONDS} + {SECONDS} s, "
            f"{CONCURRENCY} clients"
        )
        windows = measure(setup, idp.proc.pid)
        probe_after = speed_probe()
        for w in windows:
            if w["case"] == CASES[0] or w["errors"]:
                log(
                    f"round {w['round']} {w['case']}: {w['rps']:.0f}/s p50 {w['p50_ms']:.2f} ms, "
                    f"IdP {w['cpu_ms']['idp']:.3f} ms/req, errors {w['errors']}"
                )
        missing = sum(1 for v in seen_stamps(setup) if v == 0)
        idp.stop()
        log("in process: census and CPU per request")
        inproc = in_process(app, setup)
        summary = summarise(windows)
        errors = sum(w["errors"] for w in windows)
        result: dict[str, Any] = {
            "benchmark": "SSO session fallback to SQL on a Redis miss (silent authorization)",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": info,
            "settings": {
                "rounds": ROUNDS,
                "seconds": SECONDS,
                "warm_seconds": WARM_SECONDS,
                "concurrency": CONCURRENCY,
                "workers": WORKERS,
                "persons": PERSONS,
                "batch": BATCH,
                "census_requests": CENSUS,
                "in_process_rounds": INPROC_ROUNDS,
                "redis_db": REDIS_DB,
                "session_seen_step_seconds": app.config["SESSION_SEEN_STEP_SECONDS"],
            },
            "summary": summary,
            "in_process": inproc,
            "windows": windows,
            "errors": errors,
            "copies_missing_after": missing,
            "speed_probe_ms": [probe_before, probe_after],
        }
        result["notes"] = notes(result)
        result["elapsed_seconds"] = round(time.monotonic() - started, 1)
        report.write_record(OUT, "fallback", result, markdown)
        log(f"written {OUT / 'fallback.md'} and {OUT / 'fallback.json'}")
        return 1 if errors or missing else 0


if __name__ == "__main__":
    sys.exit(main())
