"""Single logout under load: fan-out to 20 schools, a burst of 2,000 logouts drained by
`idp worker`, and the Redis memory of an SSO session (issue 4, acceptance 5).

Servers: the IdP on gunicorn (2 sync workers) on PostgreSQL (a fresh database, dropped at the
end, unless DATABASE_URL is given) and Redis (db LOGOUT_REDIS_DB, default 15, flushed before and
after, unless REDIS_URL is given); 20 schools whose back-channel logout URIs are served by one
receiver process (tests.bench.receiver) on 20 loopback ports, recording (aud, sid, jti) and
the arrival time of every logout token.

1. Baseline, same run: the receivers' raw request rate under wrk (32 connections, one
   pre-minted token body).
2. Fan-out: a person with a live session at all 20 schools logs out through GET /logout with
   the ID token hint of one of them (as a school's logout button does); time from sending the
   request to the 20th delivery, p50 over LOGOUT_FANOUT_N logouts, one after another. One
   `idp worker` runs meanwhile for anything the direct attempt did not deliver.
3. Burst: 2,000 sessions × 20 schools made straight in SQL and Redis, ended through
   end_sessions (direct attempt off) = 40,000 queued deliveries; LOGOUT_WORKERS `idp worker`
   processes (default 2) are running when the rows become due; drain time = from then to the
   last delivery at the receivers. Lost = expected (school, sid) pairs never received;
   duplicates = receipts beyond the first per pair.
4. Redis memory per SSO session: MEMORY USAGE of idp:sess:* and idp:sid:* of sessions created
   with sessions.create (what the login does), averaged.

Run: .venv/bin/python -m tests.bench.logout  (writes artifacts/bench/logout.md and logout.json)
Environment: LOGOUT_SCHOOLS (20), LOGOUT_FANOUT_N (50), LOGOUT_BURST (2000), LOGOUT_WORKERS (2),
LOGOUT_MEMORY_SESSIONS (1000), LOGOUT_REDIS_DB (15), LOGOUT_STRICT=1 to exit non-zero when a goal
is missed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from flask import Flask
from sqlalchemy import func, insert, select, update

from tests.bench import cpu, report, services, wrk
from tests.support import free_port

OUT = services.ROOT / "artifacts" / "bench"
GOAL_P50_MS = 250.0
GOAL_DRAIN_SECONDS = 60.0
GOAL_SESSION_BYTES = 1024
DRAIN_LIMIT_SECONDS = 300.0
GUNICORN_WORKERS = 2


SCHOOLS = services.env_int("LOGOUT_SCHOOLS", 20)
FANOUT_N = services.env_int("LOGOUT_FANOUT_N", 50)
BURST = services.env_int("LOGOUT_BURST", 2000)
WORKERS = services.env_int("LOGOUT_WORKERS", 2)
MEMORY_SESSIONS = services.env_int("LOGOUT_MEMORY_SESSIONS", 1000)
REDIS_DB = services.env_int("LOGOUT_REDIS_DB", 15)


log = services.progress("logout")


@dataclass
class School:
    """A benchmark school: its client (primary key and client_id) and the person's sub there."""

    pk: int
    client_id: str
    sub: str
    port: int


@dataclass
class World:
    """Everything the measurements need."""

    app: Flask
    issuer: str
    env: dict[str, str]
    schools: list[School]
    person_id: int
    account_id: int
    receiver_port: int
    idp: services.Gunicorn
    work: Path
    redis_url: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


# --- the receivers ---------------------------------------------------------------------------


def start_receiver(ports: list[int], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the receiver process on the ports and wait until it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.receiver", *map(str, ports)],
        cwd=services.ROOT,
        stdout=subprocess.PIPE,
        stderr=log_path.open("wb"),
        start_new_session=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"the receiver did not start; see {log_path}")
    return proc


def receipts(port: int) -> list[tuple[int, str, str, str, float]]:
    """Every logout token the receivers recorded: (port, aud, sid, jti, arrival)."""
    data = requests.get(f"http://127.0.0.1:{port}/_stats", timeout=30).json()
    if data["bad"]:
        raise RuntimeError(f"{data['bad']} requests without a readable logout token")
    return [tuple(r) for r in data["records"]]  # type: ignore[misc]


def reset_receipts(port: int) -> None:
    """Forget what the receivers recorded."""
    requests.post(f"http://127.0.0.1:{port}/_reset", timeout=10).raise_for_status()


def stop(proc: subprocess.Popen[bytes]) -> float:
    """Stop a process this benchmark started (by its PID); return the CPU seconds it used."""
    st = cpu._stat(str(proc.pid))
    used = st[2] if st else 0.0
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return used


# --- seeding ---------------------------------------------------------------------------------


def register(app: Flask, ports: list[int]) -> tuple[list[School], int, int]:
    """Register the schools (back-channel URI on each one's port) and a person with an
    account at every one; return the schools, the person and the first account."""
    from idp.models import Account
    from idp.people.accounts import create_account
    from idp.tenants.schools import add_school
    from shared.db import get_db

    tag = secrets.token_hex(3)
    with app.app_context():
        db = get_db()
        issued = [
            add_school(
                db,
                f"slo-{tag}-{i:02d}",
                f"Väljalogimiskool {i + 1:02d}",
                f"http://127.0.0.1:{port}",
                development=True,
            )
            for i, port in enumerate(ports)
        ]
        db.flush()
        first = create_account(
            db,
            issued[0].client.school_id,
            email=f"slo-{tag}@example.ee",
            given_name="Kaja",
            family_name="Kask",
            roles=["parent"],
        )
        subs = [first.sub]
        for item in issued[1:]:
            sub = secrets.token_urlsafe(24)
            db.add(
                Account(
                    person_id=first.person_id,
                    school_id=item.client.school_id,
                    sub=sub,
                    roles=["parent"],
                    login_email=first.login_email,
                )
            )
            subs.append(sub)
        db.commit()
        schools = [
            School(i.client.id, i.client.client_id, sub, port)
            for i, sub, port in zip(issued, subs, ports, strict=True)
        ]
        return schools, first.person_id, first.id


def signed_in_everywhere(w: World, n: int) -> list[tuple[str, str]]:
    """n live sessions (sessions.create, as the login does) at every school; (cookie, sid)."""
    from idp.models import SessionClient, utcnow
    from idp.sso import sessions
    from shared.db import get_db

    made = []
    with w.app.test_request_context():
        db = get_db()
        for _ in range(n):
            cookie, live = sessions.create(
                db, w.person_id, w.account_id, ["pwd"], "low", "Mozilla/5.0 (logout bench)"
            )
            made.append((cookie, live.sid))
        now = utcnow()
        db.execute(
            insert(SessionClient),
            [
                {"session_id": sid, "client_id": s.pk, "sub": s.sub, "first_at": now}
                for _, sid in made
                for s in w.schools
            ],
        )
        db.commit()
    return made


def id_token_hint(w: World, sid: str) -> str:
    """An ID token of the first school for the session (what its logout button sends)."""
    from idp.oidc import tokens
    from shared.db import get_db

    with w.app.app_context():
        ring = w.app.extensions["keys"].ring(get_db())
    school = w.schools[0]
    return tokens.id_token(
        ring,
        w.issuer,
        600,
        "RS256",
        sub=school.sub,
        client_id=school.client_id,
        sid=sid,
        auth_time=int(time.time()),
        acr="low",
        amr=["pwd"],
        nonce=None,
        access=None,
        extra={},
    )


def start_workers(w: World, count: int) -> None:
    """Start `idp worker` processes (the CLI as deployed), logging to the work folder."""
    for i in range(count):
        out = (w.work / f"worker-{i}.log").open("wb")
        w.workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "idp.cli", "worker"],
                cwd=services.ROOT,
                env={**os.environ, **w.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )


def stop_workers(w: World) -> float:
    """Stop the worker processes; return their CPU seconds."""
    used = sum(stop(p) for p in w.workers)
    w.workers.clear()
    return used


def pending(app: Flask, ids: tuple[int, int]) -> int:
    """Deliveries with id in [lo, hi] still pending."""
    from idp.models import Delivery
    from shared.db import get_db

    with app.app_context():
        db = get_db()
        n = db.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.id.between(*ids), Delivery.state == "pending")
        )
        db.rollback()
        return int(n or 0)


def states(app: Flask, ids: tuple[int, int]) -> dict[str, int]:
    """Deliveries with id in [lo, hi] by state."""
    from idp.models import Delivery
    from shared.db import get_db

    with app.app_context():
        db = get_db()
        rows = db.execute(
            select(Delivery.state, func.count())
            .where(Delivery.id.between(*ids))
            .group_by(Delivery.state)
        ).all()
        db.rollback()
        return {state: int(n) for state, n in rows}


def wait_drained(app: Flask, ids: tuple[int, int], limit: float) -> bool:
    """Poll until no delivery in the range is pending (bounded by limit seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pending(app, ids) == 0:
            return True
        time.sleep(0.25)
    return False


def counts(
    records: list[tuple[int, str, str, str, float]], expected: set[tuple[str, str]]
) -> dict[str, int]:
    """Delivered, lost, duplicated and unexpected (school, sid) pairs among the receipts."""
    mine = [(aud, sid) for _, aud, sid, _, _ in records if (aud, sid) in expected]
    seen = Counter(mine)
    return {
        "expected": len(expected),
        "received": len(mine),
        "delivered_pairs": len(seen),
        "lost": len(expected - set(seen)),
        "duplicates": sum(n - 1 for n in seen.values()),
        "unexpected": sum(1 for _, aud, sid, _, _ in records if (aud, sid) not in expected),
        "distinct_jti": len({jti for _, aud, sid, jti, _ in records if (aud, sid) in expected}),
    }


# --- the measurements ------------------------------------------------------------------------


def receiver_baseline(w: World, wrk_bin: str) -> dict[str, Any]:
    """The receivers' raw request rate under wrk, with one real logout token as the body."""
    from urllib.parse import urlencode

    from idp.oidc import tokens
    from shared.db import get_db

    with w.app.app_context():
        ring = w.app.extensions["keys"].ring(get_db())
    token = tokens.logout_token(
        ring, w.issuer, client_id=w.schools[0].client_id, sub=None, sid="baseline"
    )
    lines = w.work / "receiver-baseline.txt"
    lines.write_text(urlencode({"logout_token": token}) + "\n")
    result = wrk.run(
        wrk_bin,
        f"http://127.0.0.1:{w.schools[0].port}",
        "/auth/backchannel-logout",
        lines,
        connections=32,
        threads=2,
        seconds=5,
        expect=200,
        cycle=True,
    )
    reset_receipts(w.receiver_port)
    log(f"receivers' raw rate: {result.rps:.0f} req/s (errors {result.errors})")
    return result.as_dict()


def fanout(w: World, n: int) -> dict[str, Any]:
    """n logouts one after another, each at 20 schools; latency to the last delivery."""
    sessions = signed_in_everywhere(w, n + 2 * GUNICORN_WORKERS)
    hints = {sid: id_token_hint(w, sid) for _, sid in sessions}
    cookie_name = w.app.config["SSO_COOKIE_NAME"]
    logged_out = f"http://127.0.0.1:{w.schools[0].port}/auth/logged-out"
    start_workers(w, 1)
    sent: dict[str, tuple[float, float]] = {}
    direct: list[int] = []
    http = requests.Session()
    for i, (cookie, sid) in enumerate(sessions):
        http.cookies.clear()
        http.cookies.set(cookie_name, cookie)
        t0 = time.monotonic()
        resp = http.get(
            f"{w.idp.url}/logout",
            params={
                "id_token_hint": hints[sid],
                "post_logout_redirect_uri": logged_out,
                "state": "s",
            },
            allow_redirects=False,
            timeout=10,
        )
        t1 = time.monotonic()
        if resp.status_code != 200 or 'id="continue"' not in resp.text:
            raise RuntimeError(f"logout answered {resp.status_code}")
        if i >= 2 * GUNICORN_WORKERS:  # the first ones warm up every gunicorn worker
            sent[sid] = (t0, t1)
            direct.append(resp.text.count('data-state="delivered"'))
        time.sleep(0.05)
    expected = {(s.client_id, sid) for sid in sent for s in w.schools}
    wait_until = time.monotonic() + 60
    records = receipts(w.receiver_port)
    while counts(records, expected)["lost"] and time.monotonic() < wait_until:
        time.sleep(0.5)
        records = receipts(w.receiver_port)
    stop_workers(w)
    arrivals: dict[str, list[float]] = {}
    for _, aud, sid, _, at in records:
        if (aud, sid) in expected:
            arrivals.setdefault(sid, []).append(at)
    latency = sorted(
        1000 * (max(arrivals[sid]) - t0)
        for sid, (t0, _) in sent.items()
        if len(arrivals.get(sid, [])) >= len(w.schools)
    )
    answer = sorted(1000 * (t1 - t0) for t0, t1 in sent.values())
    found = counts(records, expected)
    reset_receipts(w.receiver_port)
    result: dict[str, Any] = {
        "logouts": len(sent),
        "schools": len(w.schools),
        **found,
        "complete_logouts": len(latency),
        "last_delivery_ms": _percentiles(latency),
        "logout_response_ms": _percentiles(answer),
        "delivered_by_direct_attempt": sum(direct),
        "direct_attempt_share": round(sum(direct) / max(1, len(expected)), 4),
    }
    log(
        f"fan-out: p50 {result['last_delivery_ms'].get('p50')} ms to the 20th delivery over "
        f"{len(latency)}/{len(sent)} complete logouts; lost {found['lost']}"
    )
    return result


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)

    return {
        "p50": round(statistics.median(values), 1),
        "p90": at(0.9),
        "p99": at(0.99),
        "max": round(values[-1], 1),
        "min": round(values[0], 1),
    }


def burst(w: World, logouts: int, workers: int) -> dict[str, Any]:
    """logouts × schools deliveries queued at once, drained by `idp worker` processes."""
    from idp.models import Delivery, SessionClient, SsoSession, utcnow
    from idp.sso.logout import Scope, end_sessions
    from idp.store import keys as store_keys
    from shared.db import get_db

    now = utcnow()
    sids = [secrets.token_urlsafe(18) for _ in range(logouts)]
    hashes = [secrets.token_hex(32) for _ in range(logouts)]
    started = time.monotonic()
    with w.app.test_request_context():
        db = get_db()
        rows = [
            {
                "id": sid,
                "cookie_hash": h,
                "person_id": w.person_id,
                "account_id": w.account_id,
                "auth_time": now,
                "amr": ["pwd"],
                "acr": "low",
                "user_agent": "Mozilla/5.0 (logout bench)",
                "created_at": now,
                "last_seen": now,
                "expires_at": now + dt.timedelta(hours=12),
            }
            for sid, h in zip(sids, hashes, strict=True)
        ]
        db.execute(insert(SsoSession), rows)
        db.execute(
            insert(SessionClient),
            [
                {"session_id": sid, "client_id": s.pk, "sub": s.sub, "first_at": now}
                for sid in sids
                for s in w.schools
            ],
        )
        db.commit()
        r: redis.Redis = w.app.extensions["redis"]
        pipe = r.pipeline(transaction=False)
        for sid, h in zip(sids, hashes, strict=True):
            pipe.set(store_keys.session(h), json.dumps({"sid": sid}), ex=900)
            pipe.set(store_keys.sid(sid), h, ex=900)
        pipe.execute()
        seeded = time.monotonic()
        ids: list[int] = []
        for i in range(0, logouts, 100):
            ended = end_sessions(
                get_db(), Scope(session_ids=tuple(sids[i : i + 100])), "logout", deliver=False
            )
            ids += ended.delivery_ids
        queued = time.monotonic()
        span = (min(ids), max(ids))
        # end_sessions leases each row for the direct attempt; hold them until the workers run.
        db.execute(
            update(Delivery)
            .where(Delivery.id.between(*span))
            .values(lease_until=utcnow() + dt.timedelta(hours=1))
        )
        db.commit()
    log(
        f"burst: {len(ids)} deliveries queued ({seeded - started:.1f} s seeding, "
        f"{queued - seeded:.1f} s end_sessions)"
    )
    start_workers(w, workers)
    time.sleep(5)  # let the workers start and go idle
    before = cpu.snapshot(0)
    with w.app.app_context():
        db = get_db()
        db.execute(update(Delivery).where(Delivery.id.between(*span)).values(lease_until=None))
        db.commit()
    t0 = time.monotonic()
    drained = wait_drained(w.app, span, DRAIN_LIMIT_SECONDS)
    seen_done = time.monotonic() - t0
    after = cpu.snapshot(0)
    worker_cpu = stop_workers(w)
    records = receipts(w.receiver_port)
    expected = {(s.client_id, sid) for sid in sids for s in w.schools}
    found = counts(records, expected)
    last = max((at for _, aud, sid, _, at in records if (aud, sid) in expected), default=t0)
    drain = last - t0
    result = {
        "logouts": logouts,
        "schools": len(w.schools),
        "deliveries": len(ids),
        "workers": workers,
        "drained": drained,
        "drain_seconds": round(drain, 2),
        "deliveries_per_second": round(found["received"] / drain, 1) if drain > 0 else 0,
        "seen_done_after_seconds": round(seen_done, 2),
        **found,
        "states": states(w.app, span),
        "seeding_seconds": round(seeded - started, 2),
        "end_sessions_seconds": round(queued - seeded, 2),
        "cpu_seconds": {
            "idp_workers": round(worker_cpu, 2),
            "postgres": round(cpu._delta(before.postgres, after.postgres), 2),
            "machine_total": round(after.machine - before.machine, 2),
        },
    }
    reset_receipts(w.receiver_port)
    log(
        f"burst: {found['received']} receipts in {drain:.1f} s with {workers} worker(s); lost "
        f"{found['lost']}, duplicates {found['duplicates']}"
    )
    return result


def session_memory(w: World, n: int) -> dict[str, Any]:
    """MEMORY USAGE of the Redis keys of n sessions made as the login makes them."""
    from idp.sso import sessions
    from idp.store import keys as store_keys
    from shared.db import get_db
    from shared.security import sha256_hex

    made = []
    with w.app.test_request_context():
        db = get_db()
        for _ in range(n):
            cookie, live = sessions.create(
                db,
                w.person_id,
                w.account_id,
                ["pwd"],
                "low",
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
            )
            made.append((sha256_hex(cookie), live.sid))
    r = redis.Redis.from_url(w.redis_url)
    pipe = r.pipeline(transaction=False)
    for hashed, sid in made:
        pipe.memory_usage(store_keys.session(hashed), samples=0)
        pipe.memory_usage(store_keys.sid(sid), samples=0)
    sizes = pipe.execute()
    sess, sid_keys = sizes[0::2], sizes[1::2]
    per = [a + b for a, b in zip(sess, sid_keys, strict=True)]
    result = {
        "sessions": n,
        "bytes_per_session_mean": round(statistics.mean(per), 1),
        "bytes_per_session_max": max(per),
        "idp_sess_key_mean": round(statistics.mean(sess), 1),
        "idp_sid_key_mean": round(statistics.mean(sid_keys), 1),
    }
    log(f"Redis: {result['bytes_per_session_mean']} bytes per SSO session (mean of {n})")
    return result


# --- set-up and report -----------------------------------------------------------------------


@contextmanager
def prepared() -> Iterator[World]:
    """Own database and Redis db, the receivers, the IdP on gunicorn; all undone after."""
    db_name = None
    own_redis = None
    work = Path(tempfile.mkdtemp(prefix="stuudium-logout-"))
    procs: list[subprocess.Popen[bytes]] = []
    idp: services.Gunicorn | None = None
    world: World | None = None
    try:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            database_url, db_name = services.create_database()
        redis_url = os.environ.get("REDIS_URL") or ""
        if not redis_url:
            redis_url = own_redis = f"redis://127.0.0.1:6379/{REDIS_DB}"
            services.flush_redis(own_redis)
        ports = [free_port() for _ in range(SCHOOLS)]
        procs.append(start_receiver(ports, work / "receiver.log"))
        idp_port = free_port()
        issuer = f"http://127.0.0.1:{idp_port}"
        env = services.idp_env(database_url, redis_url, issuer, work / "var")
        os.environ.update(env)
        from idp import create_app
        from idp.cli import upgrade_database

        app = create_app({"ISSUER": issuer})
        upgrade_database(app)
        schools, person_id, account_id = register(app, ports)
        app.extensions["db_engine"].dispose()  # no pooled connection is forked into children
        idp = services.Gunicorn(
            "tests.bench.wsgi:app",
            idp_port,
            {**os.environ, **env},
            GUNICORN_WORKERS,
            OUT / "gunicorn-logout.log",
        ).start()
        idp.wait_ready()
        log(f"{SCHOOLS} schools registered, receivers on {ports[0]}…; IdP {idp.url}")
        world = World(
            app, issuer, env, schools, person_id, account_id, ports[0], idp, work, redis_url
        )
        yield world
    finally:
        if world is not None:
            stop_workers(world)
        if idp is not None:
            idp.stop()
        for proc in procs:
            stop(proc)
        if db_name is not None:
            try:
                services.drop_database(db_name)
            except Exception as exc:
                log(f"could not drop database {db_name}: {exc}")
        if own_redis is not None:
            services.flush_redis(own_redis)
        shutil.rmtree(work, ignore_errors=True)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The acceptance goals against what was measured."""
    fan, bur, mem = results["fanout"], results["burst"], results["redis_memory"]
    p50 = fan["last_delivery_ms"].get("p50", float("inf"))
    return [
        {
            "goal": f"fan-out to {fan['schools']} schools: all delivered, p50 to the last "
            f"delivery <= {GOAL_P50_MS:.0f} ms",
            "measured": f"p50 {p50} ms; lost {fan['lost']}",
            "pass": p50 <= GOAL_P50_MS and fan["lost"] == 0,
        },
        {
            "goal": f"burst of {bur['logouts']} logouts x {bur['schools']} schools drains in "
            f"<= {GOAL_DRAIN_SECONDS:.0f} s with 0 lost",
            "measured": f"{bur['drain_seconds']} s, lost {bur['lost']}, duplicates "
            f"{bur['duplicates']}",
            "pass": bur["drained"]
            and bur["drain_seconds"] <= GOAL_DRAIN_SECONDS
            and bur["lost"] == 0,
        },
        {
            "goal": f"Redis memory per SSO session <= {GOAL_SESSION_BYTES} bytes",
            "measured": f"{mem['bytes_per_session_mean']} bytes",
            "pass": mem["bytes_per_session_mean"] <= GOAL_SESSION_BYTES,
        },
    ]


def _row(label: str, figures: dict[str, float]) -> str:
    return (
        f"| {label} | "
        + " | ".join(str(figures.get(k, "-")) for k in ("p50", "p90", "p99", "max"))
        + " |"
    )


def markdown(results: dict[str, Any]) -> str:
    """The human-readable report."""
    fan, bur, mem, base = (
        results[k] for k in ("fanout", "burst", "redis_memory", "receiver_baseline")
    )
    lines = [
        "# Single logout benchmark",
        "",
        f"{results['date']}; {results['machine']['nproc']} CPUs, "
        f"{results['machine']['cpu_model']}; load average before {results['loadavg_before']}, "
        f"after {results['loadavg_after']}; {results['wall_seconds']} s in all.",
        "",
        "| goal | measured | pass |",
        "|---|---|:-:|",
        *[
            f"| {g['goal']} | {g['measured']} | {'yes' if g['pass'] else 'NO'} |"
            for g in results["goals"]
        ],
        "",
        "## Baseline (same run)",
        "",
        f"Receivers' raw rate under wrk (32 connections, one token body): {base['rps']:.0f} "
        f"requests/s, p50 {base['p50_ms']:.2f} ms, errors {base['errors']}.",
        "",
        "## Fan-out",
        "",
        f"{fan['logouts']} logouts one after another, each at {fan['schools']} schools "
        f"(GET /logout with an ID token hint, gunicorn {GUNICORN_WORKERS} sync workers).",
        "",
        "| ms | p50 | p90 | p99 | max |",
        "|---|--:|--:|--:|--:|",
        _row("to the last delivery", fan["last_delivery_ms"]),
        _row("logout page answered", fan["logout_response_ms"]),
        "",
        f"Delivered by the direct attempt: {fan['delivered_by_direct_attempt']} of "
        f"{fan['expected']}; lost {fan['lost']}, duplicates {fan['duplicates']}.",
        "",
        "## Burst",
        "",
        f"{bur['deliveries']} deliveries ({bur['logouts']} logouts x {bur['schools']} schools) "
        f"drained by {bur['workers']} `idp worker` process(es) in {bur['drain_seconds']} s "
        f"({bur['deliveries_per_second']} deliveries/s, "
        f"{bur['deliveries_per_second'] / max(base['rps'], 1):.2f} of the receivers' raw rate).",
        "",
        f"Expected (school, sid) pairs {bur['expected']}; delivered {bur['delivered_pairs']}; "
        f"lost {bur['lost']}; duplicates {bur['duplicates']}; distinct jti "
        f"{bur['distinct_jti']}; final states {bur['states']}.",
        "",
        f"CPU seconds during the drain: {bur['cpu_seconds']}. Set-up: "
        f"{bur['seeding_seconds']} s seeding, {bur['end_sessions_seconds']} s end_sessions.",
        "",
        "## Redis memory per SSO session",
        "",
        f"{mem['bytes_per_session_mean']} bytes on average over {mem['sessions']} sessions "
        f"(idp:sess:* {mem['idp_sess_key_mean']}, idp:sid:* {mem['idp_sid_key_mean']}; max "
        f"{mem['bytes_per_session_max']}).",
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in results["notes"]],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Set up, measure, report, tear down."""
    wrk_bin = wrk.find_wrk()
    if wrk_bin is None:
        print(wrk.INSTALL_HINT, file=sys.stderr)
        return 2
    started_at = time.monotonic()
    load_before = report.loadavg()
    with prepared() as w:
        results: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": report.machine(wrk_bin, w.env["DATABASE_URL"], w.redis_url),
            "config": {
                "schools": SCHOOLS,
                "fanout_logouts": FANOUT_N,
                "burst_logouts": BURST,
                "idp_workers": WORKERS,
                "gunicorn_workers": GUNICORN_WORKERS,
                "backchannel_timeout_s": w.app.config["BACKCHANNEL_TIMEOUT_SECONDS"],
                "delivery_timeout_s": w.app.config["DELIVERY_TIMEOUT_SECONDS"],
            },
            "loadavg_before": load_before,
        }
        results["receiver_baseline"] = receiver_baseline(w, wrk_bin)
        results["fanout"] = fanout(w, FANOUT_N)
        results["burst"] = burst(w, BURST, WORKERS)
        results["redis_memory"] = session_memory(w, MEMORY_SESSIONS)
    results["notes"] = [
        "Everything (gunicorn, `idp worker`, the receivers, PostgreSQL, Redis, wrk) runs on the "
        "same machine and shares its CPUs with whatever else runs there; see the load averages.",
        "The receivers parse every form body and read (aud, sid, jti) from the token without "
        "verifying its signature; the school instance's own endpoint is tested in the flow "
        "tests.",
        "Burst set-up: sessions and session_client rows are inserted straight into SQL (and "
        "the session keys into Redis), then ended through end_sessions with the direct "
        "attempt off; the rows it leases for the direct attempt are held until the workers "
        "are idle, then released at once: the drain is timed from that moment to the last "
        "delivery at the receivers.",
        "Fan-out: one `idp worker` runs during the logouts for whatever the direct attempt did "
        "not deliver within its budget.",
    ]
    results["loadavg_after"] = report.loadavg()
    results["wall_seconds"] = round(time.monotonic() - started_at, 1)
    results["goals"] = goals(results)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "logout.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "logout.md").write_text(markdown(results))
    print(
        "\n".join(
            f"{'PASS' if g['pass'] else 'MISS'}  {g['goal']}: {g['measured']}"
            for g in results["goals"]
        )
    )
    print("written: artifacts/bench/logout.md, artifacts/bench/logout.json")
    missed = [g for g in results["goals"] if not g["pass"]]
    return 1 if missed and os.environ.get("LOGOUT_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
