"""Capacity: the cost of a login, a silent jump to another school, a logout and a login link's
use on an IdP with few schools and on one with many, side by side in one run.
Cost per operation: the wall time of the whole operation (every request of it, through the
app's WSGI interface, one at a time) on PostgreSQL and Redis, with this process's CPU beside
it. The two IdPs (a database each, one Redis db) are measured in interleaved rounds, the order
turning each round, so a drift of the machine's speed hits both alike; the goal is a median
ratio of per-round medians of at most 1.2 between the two sizes for each operation.

`python -m tests.bench.capacity` (in `make bench`). CAPACITY_SMALL / CAPACITY_LARGE schools
with CAPACITY_ACCOUNTS accounts each (10 / 500 x 400 by default), CAPACITY_OPS operations of
each kind per size in CAPACITY_ROUNDS rounds (60 in 6). Figures in artifacts/bench/capacity.md
and capacity.json."""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from tests.bench import services

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "artifacts" / "bench"
ISSUER = "https://id.capacity.example"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
IX_RE = re.compile(r'name="ix" value="([^"]+)"')
PASSWORD = "mets-kask-" + secrets.token_hex(6)
GOAL = 1.2
KINDS = ("login", "jump", "logout", "link")
SECRETS: dict[str, str] = {}  # client_id -> secret, of the schools this run registered


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[capacity] {msg}", file=sys.stderr, flush=True)


def grow(app: Flask, schools: int, accounts: int, password_hash: str) -> list[dict[str, Any]]:
    """Add schools until there are `schools`, each with `accounts` people (bulk inserted, one
    shared password hash: seeding must not take an hour of argon2)."""
    from idp.models import Account, Client, Person, School
    from idp.tenants.schools import add_school
    from shared.db import get_db

    with app.app_context():
        db = get_db()
        count = len(db.scalars(select(School.id)).all())
        for n in range(count, schools):
            slug = f"kool-{n:04d}-{secrets.token_hex(2)}"
            issued = add_school(
                db, slug, f"Kool {n}", f"http://127.0.0.1:9/{slug}", development=True
            )
            db.flush()
            people = (
                db.execute(
                    insert(Person).returning(Person.id),
                    [
                        {
                            "given_name": "Mari",
                            "family_name": f"Maasikas{i}",
                            "version": 0,
                            "email": f"p{i}@{slug}.example",
                            "password_hash": password_hash,
                        }
                        for i in range(accounts)
                    ],
                )
                .scalars()
                .all()
            )
            db.execute(
                insert(Account),
                [
                    {
                        "person_id": pid,
                        "school_id": issued.client.school_id,
                        "sub": secrets.token_urlsafe(24),
                        "roles": ["parent"],
                        "login_email": f"p{i}@{slug}.example",
                    }
                    for i, pid in enumerate(people)
                ],
            )
            SECRETS[issued.client.client_id] = issued.secret or ""
            db.commit()
            if (n + 1) % 50 == 0:
                log(f"{n + 1} schools")
        rows = db.execute(
            select(School.slug, School.id, Client.client_id, Client.redirect_uris)
            .join(Client, Client.school_id == School.id)
            .order_by(School.id)
        ).all()
        return [
            {"slug": s, "id": i, "client_id": c, "redirect_uri": r[0], "secret": SECRETS[c]}
            for s, i, c, r in rows
        ]


def _authorize(client: FlaskClient, school: dict[str, Any], **extra: str) -> Any:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": school["client_id"],
            "redirect_uri": school["redirect_uri"],
            "scope": "openid",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            **extra,
        }
    )
    return client.get(f"/authorize?{query}")


def _code(resp: Any) -> str:
    location = resp.headers.get("Location", "")
    codes = parse_qs(urlsplit(location).query).get("code")
    if not codes:
        raise RuntimeError(f"no code: {resp.status_code} {location[:200]}")
    return codes[0]


def _follow(client: FlaskClient, resp: Any) -> Any:
    while resp.status_code in (302, 303) and resp.headers["Location"].startswith((ISSUER, "/")):
        target = urlsplit(resp.headers["Location"])
        resp = client.get(f"{target.path}?{target.query}")
    return resp


def _token(client: FlaskClient, school: dict[str, Any], code: str) -> dict[str, Any]:
    resp = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": school["redirect_uri"],
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "client_id": school["client_id"],
            "client_secret": school["secret"],
        },
    )
    if resp.status_code != 200:
        raise RuntimeError(f"token: {resp.status_code} {resp.get_data(as_text=True)[:200]}")
    return dict(resp.get_json())


def login(app: Flask, school: dict[str, Any], email: str) -> tuple[FlaskClient, str]:
    """A password login at a school through the login page; the browser and its id token."""
    client = app.test_client()
    page = _follow(client, _authorize(client, school))
    html = page.get_data(as_text=True)
    csrf, ix = CSRF_RE.search(html), IX_RE.search(html)
    if not (csrf and ix):
        raise RuntimeError(f"no login form: {page.status_code}")
    done = _follow(
        client,
        client.post(
            "/login",
            data={
                "csrf_token": csrf.group(1),
                "ix": ix.group(1),
                "email": email,
                "password": PASSWORD,
            },
        ),
    )
    return client, _token(client, school, _code(done))["id_token"]


def jump(client: FlaskClient, school: dict[str, Any]) -> None:
    """A silent login at another school of the signed-in person."""
    _token(client, school, _code(_authorize(client, school, prompt="none")))


def logout(client: FlaskClient, id_token: str) -> None:
    """RP-initiated logout with the id token (the schools are told by back-channel)."""
    resp = client.get("/logout", query_string={"id_token_hint": id_token})
    if resp.status_code != 200:
        raise RuntimeError(f"logout: {resp.status_code}")


def use_link(app: Flask, school: dict[str, Any], account_id: int) -> None:
    """Open a one-time login link's page and press its button."""
    from idp.models import Account
    from idp.people import one_time_links as links
    from shared.db import get_db

    with app.app_context():
        db = get_db()
        account = db.get(Account, account_id)
        # The link is mailed to the login e-mail: only while it is that does the link work.
        raw = links.mint(
            db,
            "access",
            f"account:{account_id}",
            school["id"],
            sent_to=(account.login_email if account else None) or "",
        )
        db.commit()
    client = app.test_client()
    page = client.get(f"/s/{school['slug']}/signin")
    csrf = CSRF_RE.search(page.get_data(as_text=True))
    if csrf is None:
        raise RuntimeError("no link form")
    resp = client.post(
        f"/s/{school['slug']}/signin", data={"csrf_token": csrf.group(1), "token": raw}
    )
    if resp.status_code != 303:
        raise RuntimeError(f"link: {resp.status_code}")


Samples = dict[str, list[tuple[float, float]]]


def measure(app: Flask, schools: list[dict[str, Any]], ops: int) -> Samples:
    """(wall ms, CPU ms) of each operation of each kind, over schools spread across the range."""
    from idp.models import Account
    from shared.db import get_db

    rng = secrets.SystemRandom()
    samples: Samples = {k: [] for k in KINDS}

    def timed(kind: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        samples[kind].append(
            ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
        )
        return result

    for _ in range(ops):
        home, other = rng.sample(schools, 2)
        with app.app_context():
            db = get_db()
            account = db.scalars(
                select(Account)
                .where(Account.school_id == home["id"])
                .offset(rng.randrange(10))
                .limit(1)
            ).one()
            email, person_id = account.login_email or "", account.person_id
            if (
                db.scalar(
                    select(Account.id).where(
                        Account.person_id == person_id, Account.school_id == other["id"]
                    )
                )
                is None
            ):
                db.add(
                    Account(
                        person_id=person_id,
                        school_id=other["id"],
                        roles=["parent"],
                        sub=secrets.token_urlsafe(24),
                        login_email=email,
                    )
                )
                db.commit()
            account_id = account.id
        client, id_token = timed("login", lambda: login(app, home, email))
        timed("jump", lambda: jump(client, other))
        timed("logout", lambda: logout(client, id_token))
        timed("link", lambda: use_link(app, home, account_id))
    return samples


def _idp(database_url: str, redis_url: str) -> Flask:
    """An IdP app on its own database, migrated."""
    from idp import create_app
    from idp.cli import upgrade_database

    app = create_app(
        {
            "ISSUER": ISSUER,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TESTING": True,
            "LOGIN_MAX_FAILURES_PER_ADDRESS": 1_000_000,
            "FORM_RATE_LIMIT": "1000000 per minute",
            "BACKCHANNEL_TIMEOUT_SECONDS": 0.2,
            # Every client read from SQL in both IdPs: with 10 schools every client stays in
            # the per-process cache, with 500 nearly every operation's is a first use, which
            # measured the cache's hit rate (about 0.5 ms a jump), not the cost of size.
            "CLIENT_CACHE_SECONDS": 0,
        }
    )
    upgrade_database(app)
    return app


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> int:
    """Seed a small and a large IdP, measure both in interleaved rounds; write the figures."""
    from idp.people.accounts import hash_password

    small = int(os.environ.get("CAPACITY_SMALL", "10"))
    large = int(os.environ.get("CAPACITY_LARGE", "500"))
    accounts = int(os.environ.get("CAPACITY_ACCOUNTS", "400"))
    ops = int(os.environ.get("CAPACITY_OPS", "60"))
    rounds = max(1, int(os.environ.get("CAPACITY_ROUNDS", "6")))
    per_round = max(2, -(-ops // rounds))
    redis_url = services.own_redis()
    made = [services.create_database(f"stuudium_capacity_{size}") for size in (small, large)]
    apps: dict[int, Flask] = {}
    try:
        schools: dict[int, list[dict[str, Any]]] = {}
        for size, (database_url, _) in zip((small, large), made, strict=True):
            apps[size] = _idp(database_url, redis_url)
            with apps[size].app_context():
                password_hash = hash_password(PASSWORD)
            started = time.monotonic()
            schools[size] = grow(apps[size], size, accounts, password_hash)
            log(
                f"{size} schools x {accounts} accounts seeded in {time.monotonic() - started:.0f} s"
            )
            measure(apps[size], schools[size], max(2, per_round // 2))  # warm-up
        samples: dict[int, Samples] = {size: {k: [] for k in KINDS} for size in (small, large)}
        ratios: dict[str, list[float]] = {k: [] for k in KINDS}
        for n in range(rounds):
            medians: dict[int, dict[str, float]] = {}
            for size in (small, large) if n % 2 == 0 else (large, small):
                got = measure(apps[size], schools[size], per_round)
                medians[size] = {k: statistics.median(w for w, _ in got[k]) for k in KINDS}
                for k in KINDS:
                    samples[size][k] += got[k]
            for k in KINDS:
                ratios[k].append(medians[large][k] / medians[small][k])
            log(f"round {n + 1}/{rounds}: " + ", ".join(f"{k} {ratios[k][-1]:.2f}" for k in KINDS))
    finally:
        for app in apps.values():
            app.extensions["db_engine"].dispose()
        for _, name in made:
            services.drop_database(name)
        services.flush_redis(redis_url)
    wall = {s: {k: _median([w for w, _ in samples[s][k]]) for k in KINDS} for s in samples}
    cpu = {s: {k: _median([c for _, c in samples[s][k]]) for k in KINDS} for s in samples}
    ratio = {k: round(statistics.median(v), 3) for k, v in ratios.items()}
    report = {
        "schools": [small, large],
        "accounts_per_school": accounts,
        "ops": per_round * rounds,
        "rounds": rounds,
        "ms_per_operation": {str(s): r for s, r in wall.items()},
        "cpu_ms_per_operation": {str(s): r for s, r in cpu.items()},
        "ratio": ratio,
        "ratio_per_round": ratios,
        "goal": GOAL,
        "met": all(r <= GOAL for r in ratio.values()),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "capacity.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"# Capacity: {small} vs {large} schools x {accounts} accounts",
        "",
        f"Median ms per operation ({per_round * rounds} each, one at a time, WSGI in-process, "
        f"PostgreSQL + Redis; {rounds} interleaved rounds): wall time, and this process's CPU "
        "in brackets. Ratio: the median (min–max) over the rounds of the large IdP's median "
        "wall time over the small one's.",
        "",
        f"| operation | {small} schools | {large} schools | ratio (goal <= {GOAL}) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {wall[small][k]} ({cpu[small][k]}) | {wall[large][k]} ({cpu[large][k]}) "
        f"| {_spread(ratios[k])} |"
        for k in KINDS
    ]
    (OUT / "capacity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
