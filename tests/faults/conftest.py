"""Fault-test fixtures: an IdP of the test's own (its own Redis server, optionally its own
PostgreSQL cluster), `idp worker` as a real process, and schools as scripted HTTP endpoints."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from shared.db import normalise_url
from tests.flows.test_backchannel import _school_at
from tests.support import (
    Browser,
    LiveServer,
    PersonLogin,
    Receiver,
    SchoolClient,
    free_port,
    sign_in,
    unverified_claims,
)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/nonexistent"))
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll check() until it returns something truthy, failing after seconds."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def lock_waiters(url: str) -> int:
    """How many of the server's sessions wait for a lock."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
        return int(row[0]) if row else 0


def race(
    postgres: Postgres,
    lock: str,
    param: str | None,
    first: Callable[[], Any],
    second: Callable[[], Any],
) -> tuple[Any, Any]:
    """Hold a lock (the statement lock, with param when given) while first starts and waits
    for it, then second starts and waits too (for it, or for first); release it; return both
    answers."""
    import psycopg

    holder = psycopg.connect(postgres.url)
    holder.execute(lock, (param,) if param is not None else None)
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(first)
        wait_for(lambda: lock_waiters(postgres.url) == 1, 10, "the first to wait")
        two = pool.submit(second)
        wait_for(lambda: lock_waiters(postgres.url) == 2, 10, "the second to wait")
        holder.rollback()
        holder.close()
        return one.result(timeout=30), two.result(timeout=30)


def stop_worker(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM a worker, which must finish its round and exit cleanly; return its output."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def redis_server_args(port: int, directory: Path) -> list[str]:
    """A redis-server's command line: on loopback at port, in directory, and persisting only
    through an explicit SAVE, so a test decides what a restart revives."""
    return [
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
    ]


def wait_for_redis(port: int, what: str) -> None:
    """Wait until the redis-server (or sentinel) on port answers PING."""
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(answers, 10, what)
    finally:
        client.close()


class RedisServer:
    """A redis-server of the test's own on a free loopback port, in a directory it keeps."""

    def __init__(self, directory: Path, snapshots: bool = False) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.snapshots = snapshots
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        """Start the server (loading dump.rdb if one was saved) and wait until it answers."""
        dbfilename = "dump.rdb" if self.snapshots else "none.rdb"
        args = [*redis_server_args(self.port, self.dir), "--dbfilename", dbfilename]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_redis(self.port, "redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL the server: nothing after the last SAVE survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Postgres:
    """A PostgreSQL cluster of the test's own (initdb refuses root, so it runs as postgres)."""

    def __init__(self, directory: Path, settings: str = "-c wal_writer_delay=10s") -> None:
        self.dir = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.settings = settings  # the server's options after fsync=off
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, *args],
            check=True,
            timeout=60,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def init(self) -> Postgres:
        """Create the cluster (trust on loopback: it lives only as long as the test)."""
        if self.prefix:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections. By default the WAL writer
        waits its longest (10 s), so a commit that did not wait for its own flush is reliably
        lost in an immediate stop, as in a crash at the worst moment."""
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "30",
            "-l",
            str(self.data / "log"),
            "-o",
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off {self.settings}",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode immediate: a crash, no shutdown checkpoint)."""
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop"
        )

    def running(self) -> bool:
        """Tell whether the server is up."""
        done = subprocess.run(
            [*self.prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0


@dataclass
class FaultIdp:
    """An IdP app served over HTTP, with the environment that points `idp worker` at it."""

    app: Flask
    url: str
    env: dict[str, str]
    server: LiveServer
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def redis(self) -> redis.Redis:
        """The IdP's Redis client."""
        r: redis.Redis = self.app.extensions["redis"]
        return r

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """Start `idp worker` as a process of its own."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "worker"],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def school(self, base: str) -> SchoolClient:
        """Register a school whose back-channel endpoint is under base."""
        return _school_at(self.app, base)

    def person(self, schools: list[SchoolClient]) -> list[PersonLogin]:
        """One person with an account at each school (as linking leaves them)."""
        from idp.models import Account
        from idp.people.accounts import create_account
        from idp.tenants.schools import school_by_slug
        from shared.db import get_db

        email = f"{secrets.token_hex(4)}@example.ee"
        password = "mets-kask-" + secrets.token_hex(6)
        with self.app.app_context():
            db = get_db()
            first = create_account(
                db,
                school_by_slug(db, schools[0].slug).id,
                email=email,
                given_name="Mari",
                family_name="Maasikas",
                roles=["parent"],
                password=password,
            )
            accounts = [first]
            for school in schools[1:]:
                account = Account(
                    person_id=first.person_id,
                    roles=["parent"],
                    school_id=school_by_slug(db, school.slug).id,
                    sub=secrets.token_urlsafe(24),
                    login_email=email,
                )
                db.add(account)
                accounts.append(account)
            db.commit()
            return [PersonLogin(email, password, a.sub, "Mari", "Maasikas") for a in accounts]

    def two_schools(
        self, receivers: list[Receiver]
    ) -> tuple[Browser, list[SchoolClient], list[PersonLogin]]:
        """A fresh browser, two schools whose back-channel endpoints are scripted receivers
        (appended to receivers), and one person with an account at each."""
        receivers.extend([Receiver(), Receiver()])
        schools = [self.school(r.url) for r in receivers]
        return Browser(self.url), schools, self.person(schools)

    def signed_in_at_two(
        self, receivers: list[Receiver]
    ) -> tuple[Browser, list[SchoolClient], list[PersonLogin], list[dict[str, Any]], str]:
        """two_schools, signed in at both (with refresh tokens): also the token responses and
        the session's sid."""
        browser, schools, logins = self.two_schools(receivers)
        tokens = self.sign_in_everywhere(browser, schools, logins)
        return browser, schools, logins, tokens, unverified_claims(tokens[0]["id_token"])["sid"]

    def logout(self, browser: Browser, id_token: str) -> requests.Response:
        """RP-initiated logout in the browser, with the ID token as hint."""
        return browser.http.get(
            f"{self.url}/logout", params={"id_token_hint": id_token}, timeout=30
        )

    def sign_in_everywhere(
        self, browser: Browser, schools: list[SchoolClient], logins: list[PersonLogin]
    ) -> list[dict[str, Any]]:
        """Sign in at every school with one browser (the first logs in, the rest are silent)."""
        return [
            sign_in(self.url, browser, school, login, scope="openid offline_access")
            for school, login in zip(schools, logins, strict=True)
        ]

    def deliveries(self, sid: str) -> list[tuple[str, str, int]]:
        """(client_id, state, attempts) of the logout messages of a session."""
        from idp.models import Delivery
        from shared.db import get_db

        with self.app.app_context():
            rows = get_db().scalars(select(Delivery).order_by(Delivery.id)).all()
            return [
                (r.client.client_id, r.state, r.attempts)
                for r in rows
                if r.payload.get("sid") == sid
            ]

    def check_logout_token(
        self, token: str, school: SchoolClient, sub: str, sid: str
    ) -> dict[str, Any]:
        """Verify a logout token as a school must (JWKS signature, typ, claims); its claims."""
        keys = KeySet.import_key_set(requests.get(f"{self.url}/jwks", timeout=5).json())
        decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
        claims = decoded.claims
        assert decoded.header["typ"] == "logout+jwt"
        assert claims["iss"] == self.url and claims["aud"] == school.client_id
        assert claims["sub"] == sub and claims["sid"] == sid
        assert claims["events"] == {LOGOUT_EVENT: {}} and "nonce" not in claims
        now = time.time()
        assert claims["iat"] <= now + 1 and now < claims["exp"] <= claims["iat"] + 120
        return dict(claims)

    def stop(self) -> None:
        """Stop the workers it started and the HTTP server."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()  # its pipe, read or not, is ours to close
        self.server.stop()


def fault_idp(tmp: Path, database_url: str, redis_url: str, **config: Any) -> FaultIdp:
    """Build, migrate and serve an IdP on the given database and Redis."""
    from idp import create_app
    from idp.cli import upgrade_database

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    kek = Fernet.generate_key().decode()
    secret = secrets.token_urlsafe(32)
    settings = {
        "ISSUER": issuer,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KEY_ENCRYPTION_KEYS": kek,
        "SECRET_KEY": secret,
        "TESTING": True,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 1_000_000,
        "FORM_RATE_LIMIT": "1000000 per minute",
        **config,
    }
    app = create_app(settings)
    upgrade_database(app)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "IDP_ISSUER": issuer,
        "IDP_KEY_ENCRYPTION_KEYS": kek,
        "IDP_SECRET_KEY": secret,
        "STUUDIUM_VAR_DIR": str(tmp),
        "IDP_WORKER_POLL_SECONDS": "0.2",
        "IDP_FORM_RATE_LIMIT": "1000000 per minute",
        "IDP_DELIVERY_BACKOFF_SECONDS": "0",
        "IDP_DELIVERY_TIMEOUT": "1",
    }
    env.pop("STUUDIUM_ENV", None)
    return FaultIdp(app, issuer, env, LiveServer(app, port).start())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own, with snapshots kept in its directory."""
    server = RedisServer(tmp_path, snapshots=True).start()
    yield server
    server.kill()


@contextmanager
def own_database(tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: a fresh one on DATABASE_URL's server when set (its keys
    and rows must not mix with the other tests'), else an SQLite file."""
    shared = os.environ.get("DATABASE_URL")
    if not shared:
        yield f"sqlite:///{tmp_path / 'idp.db'}"
        return
    url = make_url(normalise_url(shared))
    name = f"{url.database}_fault_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def idp(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultIdp]:
    """An IdP of the test's own: on PostgreSQL when DATABASE_URL is set, else SQLite; own
    Redis."""
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    with own_database(tmp_path) as url:
        served = fault_idp(tmp_path, url, redis_server.url)
        yield served
        served.stop()
        served.app.extensions["db_engine"].dispose()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Scripted school endpoints; every one appended here is closed at the end."""
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.delay = 0
        receiver.close()


@pytest.fixture
def browser(idp: FaultIdp) -> Browser:
    """A fresh browser at the test's IdP."""
    return Browser(idp.url)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the test's own, running, in a directory its user can reach."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="stuudium-pg-", dir="/tmp"))
    cluster = Postgres(directory).init()
    cluster.start()
    yield cluster
    if cluster.running():
        cluster.stop("immediate")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pg_idp(
    tmp_path: Path, postgres: Postgres, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultIdp]:
    """An IdP on the test's own PostgreSQL cluster and Redis."""
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    served = fault_idp(tmp_path, postgres.url, redis_server.url)
    yield served
    served.stop()
    served.app.extensions["db_engine"].dispose()
