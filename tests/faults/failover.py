"""Failover runs for test_failover: Redis behind three sentinels, a PostgreSQL primary with a
synchronous standby behind a switched proxy, journeys under load from several threads, and the
tally of what people and schools met around the fault (issue 18)."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import psycopg
import pytest
import redis
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from tests.faults.conftest import (
    LOGOUT_EVENT,
    PG_BIN,
    REDIS_SERVER,
    FaultIdp,
    Postgres,
    fault_idp,
    wait_for,
)
from tests.support import (
    CSRF_RE,
    IX_RE,
    Browser,
    PersonLogin,
    Receiver,
    SchoolClient,
    authorize_url,
    free_port,
    pkce_pair,
    sign_in,
    unverified_claims,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "faults"
SERVICE = "stuudium"  # the Sentinel service name in REDIS_URL
STANDBY = "standby1"  # the synchronous standby's application_name

THREADS = 6  # visitors, each with a person of its own
OLD_SESSIONS = 3  # per visitor: signed in before the fault, signed in silently after it
FAULT_AFTER = 9.0  # seconds of load before the fault
LOAD_SECONDS = 25.0  # the load lasts at least this long in all
AFTER_WINDOW = 6.0  # and goes on at least this long after the window of allowed failures
GRACE = 5.0  # failures are allowed until this long after the new primary/master is in place
RECOVERY_LIMIT = 30.0  # the new primary/master must be in place within this after the fault
REQUEST_TIMEOUT = 15.0  # a request that gets no answer within this counts as a failure
RETRY_FOR = 10.0  # a person presses "log out" again (or a school retries) for this long
RETRY_PAUSE = 0.5
PAUSE_AFTER_FAILURE = 0.5  # a visitor waits this long after a failed journey
MIN_JOURNEYS = 50  # fewer finished journeys would make a pass vacuous
CODE_SLACK = 1.0  # a code issued this long before the fault may have been lost with it

# The delivery schedule of this test's IdP: the app (direct attempts) and its worker retry a
# failed delivery after BACKOFF seconds (doubling), and a worker's lease lapses after
# WORKER_LEASE seconds. idp/sso/logout.py _queue leases a logout's rows for its direct attempt
# for BACKCHANNEL_TIMEOUT + DIRECT_LEASE_EXTRA seconds; ROUND_SLACK covers one worker round.
BACKOFF = 1
WORKER_LEASE = 6
DIRECT_LEASE_EXTRA = 10.0
ROUND_SLACK = 2.0

LOGGED_OUT = "Oled välja logitud"
RETRY_PAGE = "Teenus on ajutiselt kättesaamatu"
SIGN_IN_EXPIRED = "Sisselogimine aegus"
SCHOOL_RE = re.compile(r'<li data-state="([a-z]+)"><strong>([^<]+)</strong>')

# The failures a person or a school may meet while storage fails over, and why each is one
# that they retry. Anything else — a 500, a Traceback, no answer, a session signed out, a
# sign-in that "expired", a redirect with server_error (RFC 6749 §4.1.2.1 keeps it for an
# unexpected condition, the redirect form of a 500, while a storage failover is expected and
# has temporarily_unavailable) — is never acceptable.
ACCEPTED = {
    "503 page": "the retry page (503, Retry-After): the person tries again",
    "token 503": "the token endpoint answers 503 (HTTP's own 'retry later'): the school retries",
    "temporarily_unavailable": (
        "RFC 6749 §4.1.2.1 error for a server that cannot answer now, at authorize or at the "
        "token endpoint: the school starts the sign-in again"
    ),
    "code lost": (
        "invalid_grant for a code issued in the window: it lived only in Redis and went with "
        "the old master; the school starts the sign-in again, as for any invalid_grant"
    ),
}
# Only where PostgreSQL's primary is killed: a password login's commit does not wait for its
# WAL flush by design (docs/ARCHITECTURE.md: "a crash loses only a login"), so the code of a
# session lost with the primary is refused.
LOGIN_LOST = "login lost with the primary"

# --------------------------------------------------------------------------- Redis + Sentinel


class RedisProcess:
    """One redis-server of the test's own (a master, a replica or a sentinel) on loopback."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        """A client of this server (short timeouts, str answers)."""
        return redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )

    def start_server(self, *extra: str) -> RedisProcess:
        """Start a data server without persistence and wait until it answers."""
        return self._start(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                *extra,
            ]
        )

    def start_sentinel(self, master_port: int) -> RedisProcess:
        """Start a sentinel watching the master at master_port (quorum 2 of 3)."""
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return self._start([REDIS_SERVER, str(conf), "--sentinel"])

    def _start(self, args: list[str]) -> RedisProcess:
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        try:

            def answers() -> bool:
                try:
                    return bool(client.ping())
                except redis.RedisError:
                    return False

            wait_for(answers, 10, f"redis-server on {self.port}")
        finally:
            client.close()
        return self

    def kill(self) -> None:
        """SIGKILL the process this object started."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)


class SentinelRedis:
    """A master, its replica and three sentinels; REDIS_URL names the sentinels."""

    def __init__(self, directory: Path) -> None:
        self.master = RedisProcess(directory, "master")
        self.replica = RedisProcess(directory, "replica")
        self.sentinels = [RedisProcess(directory, f"sentinel{i}") for i in range(3)]
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{nodes}/{SERVICE}/0"

    def start(self) -> SentinelRedis:
        """Start everything; return once every sentinel knows the replica and the others."""
        self.master.start_server()
        self.replica.start_server("--replicaof", "127.0.0.1", str(self.master.port))
        wait_for(lambda: _role(self.replica) == ["slave", "connected"], 15, "the replica's sync")
        for sentinel in self.sentinels:
            sentinel.start_sentinel(self.master.port)
        wait_for(self._ready, 30, "the sentinels to see the replica and each other")
        return self

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                master: Any = client.sentinel_master(SERVICE)
                replicas: Any = client.sentinel_slaves(SERVICE)
            except redis.RedisError:
                return False
            finally:
                client.close()
            healthy = [
                r
                for r in replicas
                if r["port"] == self.replica.port
                and not (r["is_sdown"] or r["is_disconnected"])
                and r.get("master-link-status") == "ok"
            ]
            if master["num-other-sentinels"] != 2 or not healthy:
                return False
        return True

    def named_masters(self) -> set[int | None]:
        """The master port each sentinel names now (None: it did not answer)."""
        named: set[int | None] = set()
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                addr: Any = client.sentinel_get_master_addr_by_name(SERVICE)
                named.add(int(addr[1]) if addr else None)
            except redis.RedisError:
                named.add(None)
            finally:
                client.close()
        return named

    def in_place(self) -> bool:
        """Every sentinel names the replica as master, and it answers as one."""
        return self.named_masters() == {self.replica.port} and _role(self.replica)[:1] == ["master"]

    def stop(self) -> None:
        """Kill every process started here."""
        for process in [*self.sentinels, self.replica, self.master]:
            process.kill()


def _role(server: RedisProcess) -> list[Any]:
    """ROLE of a data server, shortened: ["master"] or ["slave", link state]; [] when it does
    not answer."""
    client = server.client()
    try:
        role = client.execute_command("ROLE")
        if role[0] == "slave":
            return [role[0], role[3]]
        return [role[0]]
    except redis.RedisError:
        return []
    finally:
        client.close()


@contextmanager
def sentinel_redis(directory: Path) -> Iterator[SentinelRedis]:
    """A Redis master with a replica behind three sentinels, all stopped at the end."""
    cache = SentinelRedis(directory)
    try:
        yield cache.start()
    finally:
        cache.stop()


# ------------------------------------------------------------------- PostgreSQL + the proxy


class _Pair:
    """A client connection and its upstream, copied both ways by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.socks = (client, upstream)
        self.left = 2
        self.lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket, done: Callable[[_Pair], None]) -> None:
        """Copy src to dst until either side ends; the last pump closes both."""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # cut, or the other end went away: either ends the pair
        finally:
            self.cut()
            with self.lock:
                self.left -= 1
                last = self.left == 0
            if last:
                for sock in self.socks:
                    sock.close()
                done(self)

    def cut(self) -> None:
        """Shut both sockets down (wakes the pumps; they close them)."""
        for sock in self.socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already shut


class Proxy:
    """A TCP forwarder on loopback to one backend at a time (a Kubernetes "-rw" service in
    miniature): switch() points it at another backend and drops every open connection."""

    def __init__(self, backend: int) -> None:
        self.port = free_port()
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        self.listener.settimeout(0.2)
        self.lock = threading.Lock()
        self.pairs: set[_Pair] = set()
        self.threads: list[threading.Thread] = []
        self.closed = threading.Event()

    def start(self) -> Proxy:
        """Accept connections from a thread of its own."""
        self._spawn(self._accept)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        with self.lock:
            backend = self.backend
        try:
            upstream = socket.create_connection(("127.0.0.1", backend), timeout=2)
        except OSError:
            client.close()  # the backend is down: the client sees its connection end
            return
        upstream.settimeout(None)
        pair = _Pair(client, upstream)
        with self.lock:
            keep = not self.closed.is_set() and backend == self.backend
            if keep:
                self.pairs.add(pair)
        if not keep:  # switched (or stopped) meanwhile
            client.close()
            upstream.close()
            return
        self._spawn(pair.pump, client, upstream, self._forget)
        self._spawn(pair.pump, upstream, client, self._forget)

    def _forget(self, pair: _Pair) -> None:
        with self.lock:
            self.pairs.discard(pair)

    def switch(self, backend: int) -> None:
        """Forward new connections to backend and drop the open ones."""
        with self.lock:
            self.backend = backend
            open_pairs = list(self.pairs)
        for pair in open_pairs:
            pair.cut()

    def stop(self) -> None:
        """Stop accepting, drop every connection and wait for the threads."""
        self.closed.set()
        with self.lock:
            open_pairs = list(self.pairs)
            threads = list(self.threads)
        for pair in open_pairs:
            pair.cut()
        for thread in threads:
            thread.join(10)
        self.listener.close()


class Node(Postgres):
    """A PostgreSQL cluster of the test's own started with extra settings (a primary or a
    standby)."""

    def __init__(self, directory: Path, settings: str = "") -> None:
        super().__init__(directory)
        self.settings = settings

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
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
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            + self.settings,
            "start",
        )

    def postmaster_pid(self) -> int:
        """The postmaster's process id (the first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])


@dataclass
class ReplicatedPostgres:
    """A primary, its synchronous standby and the proxy the IdP connects through."""

    primary: Node
    standby: Node
    proxy: Proxy

    @property
    def url(self) -> str:
        """The database URL through the proxy."""
        return f"postgresql://postgres@127.0.0.1:{self.proxy.port}/postgres"

    def writable(self) -> bool:
        """A transaction id can be assigned through the proxy (a primary answers)."""
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT txid_current()")
                return True
        except psycopg.Error:
            return False


def _sync_standby(primary: Node) -> bool:
    with psycopg.connect(primary.url, autocommit=True, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s", (STANDBY,)
        ).fetchone()
    return row is not None and row[0] == "sync"


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A primary (synchronous_standby_names on its command line only, so the promoted standby
    never waits for a standby of its own), a standby from pg_basebackup -R, and a proxy in
    front of the primary; all stopped at the end."""
    dirs = [Path(tempfile.mkdtemp(prefix="stuudium-pg-", dir="/tmp")) for _ in range(2)]
    primary = Node(
        dirs[0],
        f"-c wal_level=replica -c max_wal_senders=5 -c synchronous_commit=on "
        f"-c synchronous_standby_names={STANDBY}",
    )
    standby = Node(dirs[1], "-c hot_standby=on")
    proxy: Proxy | None = None
    try:
        primary.init()
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        if standby.prefix:
            shutil.chown(standby.dir, "postgres", "postgres")
        standby._run(
            str(PG_BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        with (standby.data / "postgresql.auto.conf").open("a") as auto:  # the last one counts
            auto.write(
                f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                f"application_name={STANDBY}'\n"
            )
        standby.start()
        wait_for(lambda: _sync_standby(primary), 30, "the synchronous standby")
        proxy = Proxy(primary.port).start()
        yield ReplicatedPostgres(primary, standby, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        for node in (standby, primary):
            if node.running():
                node.stop("immediate")
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------------ the faults


class Fault(Protocol):
    """A fault: start() injects it; recover() returns once the new primary/master is in
    place (and fails after the deadline); events is its timeline (time.time(), what), recorded
    while watching()."""

    name: str
    events: list[tuple[float, str]]

    def watching(self) -> AbstractContextManager[None]: ...

    def start(self) -> None: ...

    def recover(self, deadline: float) -> None: ...


def _until(check: Callable[[], bool], deadline: float, what: str) -> None:
    wait_for(check, max(0.0, deadline - time.time()), what)


@contextmanager
def sentinel_events(sentinel: RedisProcess, events: list[tuple[float, str]]) -> Iterator[None]:
    """Record what a sentinel announces (+promoted-slave, +switch-master, +convert-to-slave,
    ...) from a thread of its own."""
    client = sentinel.client()
    pubsub = client.pubsub()
    pubsub.psubscribe("*")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            except redis.RedisError:
                return
            if message and message["channel"] != "__sentinel__:hello":
                events.append((time.time(), f"{message['channel']} {message['data']}"))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        pubsub.close()
        client.close()


@dataclass
class SentinelFailover:
    """SENTINEL FAILOVER on one sentinel: the replica is promoted, the old master demoted."""

    cache: SentinelRedis
    name: str = "sentinel failover"
    events: list[tuple[float, str]] = field(default_factory=list)

    def watching(self) -> AbstractContextManager[None]:
        """Record the first sentinel's announcements."""
        return sentinel_events(self.cache.sentinels[0], self.events)

    def start(self) -> None:
        """Ask the first sentinel to fail over."""
        client = self.cache.sentinels[0].client()
        try:
            client.sentinel_failover(SERVICE)
        finally:
            client.close()

    def recover(self, deadline: float) -> None:
        """Wait until every sentinel names the replica and it answers as master."""
        _until(self.cache.in_place, deadline, "the sentinels to name the new master")


@dataclass
class MasterKill:
    """SIGKILL of the Redis master: the sentinels fail over after down-after-milliseconds."""

    cache: SentinelRedis
    name: str = "redis master SIGKILL"
    events: list[tuple[float, str]] = field(default_factory=list)

    def watching(self) -> AbstractContextManager[None]:
        """Record the first sentinel's announcements."""
        return sentinel_events(self.cache.sentinels[0], self.events)

    def start(self) -> None:
        """Kill the master."""
        self.cache.master.kill()

    def recover(self, deadline: float) -> None:
        """Wait until every sentinel names the replica and it answers as master."""
        _until(self.cache.in_place, deadline, "the sentinels to name the new master")


@dataclass
class PrimaryKill:
    """SIGKILL of the PostgreSQL primary's postmaster; the standby is promoted and the proxy
    switched to it, dropping its open connections."""

    pg: ReplicatedPostgres
    name: str = "postgres primary SIGKILL"
    events: list[tuple[float, str]] = field(default_factory=list)

    def watching(self) -> AbstractContextManager[None]:
        """The steps are recorded as they are taken."""
        return nullcontext()

    def start(self) -> None:
        """Kill the postmaster (its backends end when they notice)."""
        pid = self.pg.primary.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        self.events.append((time.time(), f"primary's postmaster {pid} killed"))

    def recover(self, deadline: float) -> None:
        """Promote the standby, switch the proxy, wait until it takes writes through it."""
        self.pg.standby._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.pg.standby.data), "-w", "-t", "30", "promote"
        )
        self.events.append((time.time(), "standby promoted"))
        self.pg.proxy.switch(self.pg.standby.port)
        self.events.append((time.time(), "proxy switched, its connections dropped"))
        _until(self.pg.writable, deadline, "the promoted standby to take writes")
        self.events.append((time.time(), "writes through the proxy"))


# ---------------------------------------------------------------------------- the IdP served


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
    this module's delivery schedule; stopped at the end."""
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


# --------------------------------------------------------------------------- the recording


@dataclass
class Failure:
    """One step that did not give what the journey needed."""

    wall: float  # time.time() of the answer (or of giving up on it)
    step: str
    kind: str
    accepted: bool  # a kind of ACCEPTED (the window is checked separately)
    status: int | None
    excerpt: str
    issued: float | None = None  # when the code or interaction it needed was issued


class StepFailed(Exception):
    """A journey step failed (recorded)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


@dataclass
class Logout:
    """A logout the logged-out page confirmed."""

    sid: str
    cookie: str  # the SSO cookie the browser had before the logout
    subs: dict[str, str]  # client_id -> the person's sub at that school
    confirmed: float  # time.time() of the logged-out page
    page: list[tuple[str, str]]  # (state, school name) the page listed
    retried: bool  # the page came after an accepted failure of an earlier attempt


def _location(resp: requests.Response) -> str:
    return urljoin(resp.url, resp.headers.get("Location", ""))


def _excerpt(resp: requests.Response) -> str:
    location = resp.headers.get("Location")
    if location:
        return f"Location: {location[:200]}"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.text)).strip()
    return text[:300]


def classify(step: str, resp: requests.Response, lost_logins: bool = False) -> tuple[str, bool]:
    """(kind, accepted) of an answer a journey step could not use."""
    body = resp.text
    if "Traceback" in body:
        return "Traceback in the body", False
    if resp.status_code == 500:
        return "500", False
    token_endpoint = resp.request.path_url.startswith("/token") if resp.request else False
    if resp.status_code == 503:
        if resp.headers.get("Retry-After") and RETRY_PAGE in body:
            return "503 page", True
        if token_endpoint:
            return "token 503", True
        return "503 without Retry-After or the retry page", False
    if token_endpoint:
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        error = answer.get("error") if isinstance(answer, dict) else None
        described = str(answer.get("error_description", "")) if isinstance(answer, dict) else ""
        if error == "temporarily_unavailable" and resp.status_code in (400, 503):
            return "temporarily_unavailable", True
        if error == "invalid_grant" and "invalid or expired" in described:
            return "code lost", True
        if error == "invalid_grant" and "session has ended" in described and lost_logins:
            return LOGIN_LOST, True
        return f"token {resp.status_code} {error}: {described}", False
    if resp.status_code in (302, 303):
        params = {k: v[0] for k, v in parse_qs(urlsplit(_location(resp)).query).items()}
        error = params.get("error")
        if error == "temporarily_unavailable":
            return "temporarily_unavailable", True
        if error == "login_required":
            return "signed out (login_required)", False
        if error:
            return f"authorize error={error}", False
        return f"unexpected redirect ({step})", False
    if resp.status_code == 400 and SIGN_IN_EXPIRED in body:
        return "sign-in expired page (interaction lost)", False
    if resp.status_code == 200 and 'name="password"' in body and step == "login post":
        return "login refused (the form again)", False
    return f"unexpected {resp.status_code}", False


class Run:
    """One scenario's load: the visitors' shared record."""

    def __init__(
        self, served: Served, schools: list[SchoolClient], lost_logins: bool = False
    ) -> None:
        self.served = served
        self.idp = served.idp
        self.issuer = served.idp.url
        self.a, self.b = schools
        self.cookie_name: str = served.idp.app.config["SSO_COOKIE_NAME"]
        self.lost_logins = lost_logins
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[Failure] = []
        self.logouts: list[Logout] = []
        self.revived: list[str] = []
        self.errors: list[str] = []
        self.started = 0
        self.done = 0
        self.fault_at = math.inf
        self.in_place_at = math.inf
        self.load_started = 0.0
        self.load_stopped = 0.0

    # ---- recording

    def fail(
        self,
        step: str,
        resp: requests.Response | None,
        kind: str | None = None,
        excerpt: str = "",
        issued: float | None = None,
    ) -> StepFailed:
        """Record a failed step (classified from its answer unless kind is given)."""
        if kind is None:
            assert resp is not None
            kind, accepted = classify(step, resp, self.lost_logins)
        else:
            accepted = kind in ACCEPTED
        failure = Failure(
            time.time(),
            step,
            kind,
            accepted,
            resp.status_code if resp is not None else None,
            excerpt or (_excerpt(resp) if resp is not None else ""),
            issued,
        )
        with self.lock:
            self.failures.append(failure)
        return StepFailed(failure)

    def no_answer(self, step: str, exc: Exception) -> StepFailed:
        """Record a request that got no answer."""
        return self.fail(step, None, f"no answer ({type(exc).__name__})", str(exc)[:300])

    def note_error(self, message: str) -> None:
        """A visitor's own bug: the test must fail on it."""
        with self.lock:
            self.errors.append(message)

    # ---- HTTP

    def get(
        self, step: str, http: requests.Session | None, url: str, **kwargs: Any
    ) -> requests.Response:
        """GET without following redirects; no answer is a failure."""
        try:
            if http is None:
                return requests.get(url, allow_redirects=False, timeout=REQUEST_TIMEOUT, **kwargs)
            return http.get(url, allow_redirects=False, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise self.no_answer(step, exc) from exc

    def code(
        self, step: str, resp: requests.Response, school: SchoolClient, issued: float | None = None
    ) -> str:
        """The code of an authorization response to school, else a failure (issued: when
        the interaction it resumes was started)."""
        location = _location(resp)
        if resp.status_code in (302, 303) and location.startswith(school.redirect_uri):
            params = parse_qs(urlsplit(location).query)
            if "code" in params:
                return params["code"][0]
        raise self.fail(step, resp, issued=issued)

    def redeem(
        self, step: str, school: SchoolClient, code: str, verifier: str, issued: float
    ) -> dict[str, Any]:
        """Exchange a code as the school does; the token response, else a failure."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": school.redirect_uri,
            "code_verifier": verifier,
        }
        assert school.client_secret is not None
        try:
            resp = requests.post(
                f"{self.issuer}/token",
                data=data,
                auth=(school.client_id, school.client_secret),
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise self.no_answer(step, exc) from exc
        if resp.status_code == 200 and "id_token" in resp.text:
            return dict(resp.json())
        raise self.fail(step, resp, issued=issued)

    def authorize_none(
        self, step: str, school: SchoolClient, http: requests.Session | None, cookie: str | None
    ) -> tuple[requests.Response, str]:
        """A prompt=none authorization request (with the browser, or with only a cookie);
        the answer and the PKCE verifier."""
        verifier, challenge = pkce_pair()
        url = authorize_url(self.issuer, school, challenge, scope="openid", prompt="none")
        cookies = {self.cookie_name: cookie} if cookie is not None else None
        return self.get(step, http, url, cookies=cookies), verifier

    # ---- the checks after the load

    def check_old(self, browser: Browser, sid: str) -> bool:
        """An old session signs in silently at school B; False when it was signed out."""
        try:
            resp, verifier = self.authorize_none(
                "old session: silent B", self.b, browser.http, None
            )
            if resp.status_code in (302, 303) and "error=login_required" in _location(resp):
                self.fail("old session: silent B", resp, "SIGNED OUT (login_required)")
                return False
            code = self.code("old session: silent B", resp, self.b)
            issued = time.time()
            try:
                tokens = self.redeem("old session: token B", self.b, code, verifier, issued)
            except StepFailed as failed:
                if "session has ended" in failed.failure.excerpt:
                    self.fail("old session: token B", None, "SIGNED OUT (session ended)")
                    return False
                raise
            if unverified_claims(tokens["id_token"])["sid"] != sid:
                self.fail("old session: token B", None, "another session's sid")
        except StepFailed:
            pass  # recorded: a failure after the window
        return True

    def check_dead(self, logout: Logout, step: str, retry: bool) -> None:
        """A logged-out session's cookie opens nothing at either school (prompt=none answers
        login_required); a code whose exchange works is a revived session."""
        schools = [self.a] if retry else [self.a, self.b]
        for school in schools:
            deadline = time.time() + RETRY_FOR
            while True:
                try:
                    self._dead_at(logout, school, f"{step} ({school_label(self, school)})")
                    break
                except StepFailed as failed:
                    if not (retry and failed.failure.accepted and time.time() < deadline):
                        break
                    time.sleep(RETRY_PAUSE)

    def _dead_at(self, logout: Logout, school: SchoolClient, step: str) -> None:
        resp, verifier = self.authorize_none(step, school, None, logout.cookie)
        location = _location(resp)
        if resp.status_code in (302, 303) and location.startswith(school.redirect_uri):
            params = parse_qs(urlsplit(location).query)
            if params.get("error") == ["login_required"]:
                return
            if "code" in params:
                issued = time.time()
                try:
                    self.redeem(step, school, params["code"][0], verifier, issued)
                except StepFailed:
                    raise self.fail(step, resp, "code issued for an ended session") from None
                with self.lock:
                    self.revived.append(f"{logout.sid} at {school.name}")
                raise self.fail(step, resp, "REVIVED after a confirmed logout")
        raise self.fail(step, resp)


def school_label(run: Run, school: SchoolClient) -> str:
    """A or B."""
    return "A" if school is run.a else "B"


class Visitor:
    """One thread's person, looping journeys: password sign-in at A, silent sign-in at B,
    RP-initiated logout, prompt=none at A with the old cookie."""

    def __init__(self, run: Run, index: int, logins: list[PersonLogin]) -> None:
        self.run = run
        self.index = index
        self.logins = logins

    def loop(self) -> None:
        """Journeys until the run stops."""
        try:
            while not self.run.stop.is_set():
                if not self.journey():
                    time.sleep(PAUSE_AFTER_FAILURE)
        except Exception as exc:  # the test's own bug: fail the test, do not hang it
            self.run.note_error(f"visitor {self.index}: {exc!r}")

    def journey(self) -> bool:
        """One journey; True when every step worked."""
        run = self.run
        with run.lock:
            run.started += 1
        browser = Browser(run.issuer)
        try:
            first = self.password_sign_in(browser)
            sid = unverified_claims(first["id_token"])["sid"]
            resp, verifier = run.authorize_none("silent B", run.b, browser.http, None)
            code = run.code("silent B", resp, run.b)
            run.redeem("token B", run.b, code, verifier, time.time())
            cookie = browser.http.cookies.get(run.cookie_name)
            assert cookie, "the browser has no SSO cookie"
            logout = self.logout(browser, first["id_token"], sid, cookie)
            run.check_dead(logout, "after logout: prompt=none", retry=True)
            with run.lock:
                run.done += 1
            return True
        except StepFailed:
            return False
        finally:
            browser.http.close()

    def password_sign_in(self, browser: Browser) -> dict[str, Any]:
        """authorize → login form → POST → resume → code → tokens, at school A."""
        run, login = self.run, self.logins[0]
        verifier, challenge = pkce_pair()
        resp = run.get(
            "authorize A", browser.http, authorize_url(run.issuer, run.a, challenge, scope="openid")
        )
        if resp.status_code != 303 or not _location(resp).startswith(f"{run.issuer}/login"):
            raise run.fail("authorize A", resp)
        started = time.time()  # the interaction is in Redis from now on
        page = run.get("login form", browser.http, _location(resp))
        if page.status_code != 200 or not (CSRF_RE.search(page.text) and IX_RE.search(page.text)):
            raise run.fail("login form", page, issued=started)
        try:
            posted = browser.post_login(page, login.email, login.password, REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            raise run.no_answer("login post", exc) from exc
        if posted.status_code != 303 or "/authorize/resume" not in _location(posted):
            raise run.fail("login post", posted, issued=started)
        resumed = run.get("resume", browser.http, _location(posted))
        code = run.code("resume", resumed, run.a, started)
        return run.redeem("token A", run.a, code, verifier, time.time())

    def logout(self, browser: Browser, hint: str, sid: str, cookie: str) -> Logout:
        """RP-initiated logout, pressed again (as the retry page says) after an accepted
        failure; the confirmed logout."""
        run = self.run
        url = f"{run.issuer}/logout?{urlencode({'id_token_hint': hint})}"
        expected = {run.a.name, run.b.name}
        deadline = time.time() + RETRY_FOR
        retried = False
        while True:
            try:
                resp = run.get("logout", browser.http, url)
                if resp.status_code != 200 or LOGGED_OUT not in resp.text:
                    raise run.fail("logout", resp)
                page = SCHOOL_RE.findall(resp.text)
                named = {name for _, name in page}
                # A page may name no school when the sessions ended but the list could not be read
                # (the storage failed right after the commit; the worker tells the schools), or
                # on a retry (the failed attempt may have ended it): only within the window.
                now = time.time()
                unlisted_ok = retried or run.fault_at <= now <= run.in_place_at + GRACE
                if named != expected and (named or not unlisted_ok):
                    raise run.fail(
                        "logout", resp, "logged-out page without the schools", _excerpt(resp)
                    )
                logout = Logout(
                    sid,
                    cookie,
                    {run.a.client_id: self.logins[0].sub, run.b.client_id: self.logins[1].sub},
                    time.time(),
                    page,
                    retried,
                )
                with run.lock:
                    run.logouts.append(logout)
                return logout
            except StepFailed as failed:
                if not failed.failure.accepted or time.time() > deadline:
                    raise
                retried = True
                time.sleep(RETRY_PAUSE)


# ------------------------------------------------------------------------------- the report


class LogTap(logging.Handler):
    """Keeps the app's warnings and errors (with the time they came)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[float, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the level and the message (and an exception's last line)."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" | {type(exc).__name__}: {str(exc)[:200]}"
        self.records.append((record.created, record.levelname, message[:400]))


@dataclass
class Report:
    """What one scenario counted, and the acceptance over it."""

    name: str
    duration: float
    fault_after: float  # seconds of load before the fault
    recovery: float  # fault start → new primary/master in place
    load: float
    journeys: int
    done: int
    failures: list[Failure]
    fault_at: float
    in_place_at: float
    logouts: list[Logout]
    arrivals: dict[tuple[str, str], float]  # (sid, client_id) -> first token's arrival
    deadlines: dict[str, float]  # sid -> latest arrival the schedule allows
    allowance: float
    bad_tokens: list[str]
    not_ended: list[str]
    revived: list[str]
    old_sessions: int
    signed_out: int
    errors: list[str]
    worker_exit: int | None
    worker_lines: list[str]
    app_log: list[tuple[float, str, str]]
    timeline: list[tuple[float, str]]

    def publish(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Show the figures in the test log even when the test passes, and keep them in
        artifacts/faults/."""
        text = self.summary()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"failover-{re.sub(r'[^a-z]+', '-', self.name.lower())}.txt").write_text(
            text + "\n" + "\n".join(self.problems()) + "\n"
        )
        with capsys.disabled():
            print("\n" + text, flush=True)

    def rel(self, wall: float) -> float:
        """Seconds since the fault started."""
        return wall - self.fault_at

    @property
    def window_end(self) -> float:
        """Until when (relative) failures are allowed."""
        return self.in_place_at - self.fault_at + GRACE

    def late(self) -> list[str]:
        """Confirmed logouts whose token came later than the schedule allows, or never."""
        out = []
        for logout in self.logouts:
            for client_id in logout.subs:
                arrived = self.arrivals.get((logout.sid, client_id))
                deadline = self.deadlines[logout.sid]
                if arrived is None:
                    out.append(
                        f"{logout.sid} confirmed at {self.rel(logout.confirmed):+.2f}s: "
                        f"no token at {client_id}"
                    )
                elif arrived > deadline:
                    out.append(
                        f"{logout.sid} confirmed at {self.rel(logout.confirmed):+.2f}s: token "
                        f"at {client_id} at {self.rel(arrived):+.2f}s, allowed until "
                        f"{self.rel(deadline):+.2f}s"
                    )
        return out

    def unacceptable(self) -> list[Failure]:
        """Failures of a kind never allowed, or outside [fault start, in place + GRACE]."""
        out = []
        for f in self.failures:
            at = self.rel(f.wall)
            in_window = 0.0 <= at <= self.window_end
            if f.kind == "code lost" and (f.issued is None or self.rel(f.issued) < -CODE_SLACK):
                out.append(f)
            elif not (f.accepted and in_window):
                out.append(f)
        return out

    def problems(self, signed_out_allowed: bool = False) -> list[str]:
        """Every way the run missed the acceptance (empty: it passed)."""
        out = [f"test error: {e}" for e in self.errors]
        if self.done < MIN_JOURNEYS:
            out.append(f"only {self.done} journeys finished (at least {MIN_JOURNEYS} needed)")
        out += [
            f"failure at {self.rel(f.wall):+.2f}s in {f.step}: {f.kind} "
            f"(status {f.status}) {f.excerpt[:160]}"
            for f in self.unacceptable()
        ]
        out += [f"late logout token: {line}" for line in self.late()]
        out += [f"invalid logout token: {line}" for line in self.bad_tokens]
        out += [f"confirmed logout not ended in SQL: {sid}" for sid in self.not_ended]
        out += [f"session revived: {line}" for line in self.revived]
        if self.signed_out and not signed_out_allowed:
            out.append(f"{self.signed_out} of {self.old_sessions} old sessions signed out")
        if self.worker_exit is not None:
            out.append(f"the worker exited ({self.worker_exit}) during the run")
        return out

    def summary(self) -> str:
        """The figures as a compact table for the CI log."""
        tokens = sum(len(lo.subs) for lo in self.logouts)
        received = sum(1 for lo in self.logouts for c in lo.subs if (lo.sid, c) in self.arrivals)
        delays = [
            self.arrivals[(lo.sid, c)] - lo.confirmed
            for lo in self.logouts
            for c in lo.subs
            if (lo.sid, c) in self.arrivals
        ]
        lines = [
            f"== failover: {self.name} ({self.duration:.1f} s in all) ==",
            f"load {self.load:.1f} s, fault at +{self.fault_after:.1f} s of load, new "
            f"primary/master in place {self.recovery:.2f} s after it; failures allowed in "
            f"[0, {self.window_end:.2f}] s",
            f"journeys {self.journeys} started, {self.done} finished; confirmed logouts "
            f"{len(self.logouts)} ({sum(lo.retried for lo in self.logouts)} after a retry); "
            f"logout tokens {received}/{tokens} received, latest "
            f"{max(delays, default=0.0):+.2f} s after its page (schedule allows "
            f"{self.allowance:.1f} s); invalid tokens {len(self.bad_tokens)}",
            f"revived {len(self.revived)}; old sessions {self.old_sessions}, signed out "
            f"{self.signed_out}; journey sessions signed out "
            f"{sum(f.kind.startswith('signed out') for f in self.failures)}; "
            f"confirmed logouts not ended in SQL {len(self.not_ended)}; "
            f"worker {'alive' if self.worker_exit is None else f'exited {self.worker_exit}'}",
        ]
        for lo in self.logouts:
            if lo.retried or any(
                self.arrivals.get((lo.sid, c), math.inf) > lo.confirmed + 1 for c in lo.subs
            ):
                arrived = ", ".join(
                    f"{self.rel(self.arrivals[(lo.sid, c)]):+.2f}s"
                    if (lo.sid, c) in self.arrivals
                    else "never"
                    for c in lo.subs
                )
                lines.append(
                    f"  logout {lo.sid[:8]}… confirmed {self.rel(lo.confirmed):+.2f}s"
                    f"{' after a retry' if lo.retried else ''}, its page named "
                    f"{len(lo.page)} schools; tokens at {arrived}"
                )
        events = [(w, what) for w, what in self.timeline if -1 <= self.rel(w) <= 15]
        if events:
            lines.append(
                "  timeline: "
                + "; ".join(f"{self.rel(w):+.2f}s {what[:70]}" for w, what in events[:14])
            )
        groups: dict[tuple[str, str, int | None], list[Failure]] = {}
        for f in self.failures:
            groups.setdefault((f.step, f.kind, f.status), []).append(f)
        if groups:
            lines.append(
                f"  {'step':<34} {'kind':<40} {'status':>6} {'n':>4} {'first':>8} {'last':>8} ok"
            )
        bad = {id(f) for f in self.unacceptable()}
        for (step, kind, status), group in sorted(
            groups.items(), key=lambda item: min(f.wall for f in item[1])
        ):
            times = [self.rel(f.wall) for f in group]
            ok = "no" if any(id(f) in bad for f in group) else "yes"
            lines.append(
                f"  {step[:34]:<34} {kind[:40]:<40} {status or '-'!s:>6} {len(group):>4} "
                f"{min(times):>+8.2f} {max(times):>+8.2f} {ok}"
            )
        for f in self.unacceptable()[:8]:
            issued = f" (issued {self.rel(f.issued):+.2f}s)" if f.issued is not None else ""
            lines.append(f"  ! {self.rel(f.wall):+.2f}s {f.step}{issued}: {f.excerpt[:200]}")
        levels = Counter((level, msg[:90]) for _, level, msg in self.app_log)
        for (level, msg), n in levels.most_common(8):
            lines.append(f"  app log {level} x{n}: {msg}")
        errors = [r for r in self.app_log if r[1] in ("ERROR", "CRITICAL")]
        for wall, level, msg in errors[:3]:
            lines.append(f"  app {level} at {self.rel(wall):+.2f}s: {msg[:300]}")
        worker_warnings = [
            x for x in self.worker_lines if "warning" in x.lower() or "error" in x.lower()
        ]
        lines.append(
            f"  worker output: {len(self.worker_lines)} lines, "
            f"{len(worker_warnings)} warnings/errors"
        )
        for line in worker_warnings[:4]:
            lines.append(f"  worker: {line[:200]}")
        return "\n".join(lines)


def _logout_tokens(
    run: Run, receivers: list[Receiver], schools: list[SchoolClient]
) -> tuple[dict[tuple[str, str], float], list[str]]:
    """The first arrival of a valid logout token per (sid, client_id), and the invalid ones."""
    keys = KeySet.import_key_set(requests.get(f"{run.issuer}/jwks", timeout=10).json())
    subs = {(lo.sid, c): s for lo in run.logouts for c, s in lo.subs.items()}
    arrivals: dict[tuple[str, str], float] = {}
    bad: list[str] = []
    for receiver, school in zip(receivers, schools, strict=True):
        count = min(len(receiver.posts), len(receiver.arrived))
        for post, arrived in zip(receiver.posts[:count], receiver.arrived[:count], strict=True):
            token = post.get("logout_token", [""])[0]
            try:
                decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
            except Exception as exc:  # any refusal of the token is what is reported
                bad.append(f"at {school.name}: {type(exc).__name__}")
                continue
            claims = decoded.claims
            sid = claims.get("sid")
            key = (str(sid), school.client_id)
            wrong = [
                what
                for what, good in (
                    ("typ", decoded.header.get("typ") == "logout+jwt"),
                    ("iss", claims.get("iss") == run.issuer),
                    ("aud", claims.get("aud") == school.client_id),
                    ("events", claims.get("events") == {LOGOUT_EVENT: {}}),
                    ("nonce", "nonce" not in claims),
                    ("sub", key not in subs or claims.get("sub") == subs[key]),
                    ("iat", int(claims.get("iat", 0)) <= arrived + 1),
                    ("exp", arrived < int(claims.get("exp", 0)) <= int(claims.get("iat", 0)) + 120),
                )
                if not good
            ]
            if wrong:
                bad.append(f"{sid} at {school.name}: wrong {', '.join(wrong)}")
                continue
            arrivals[key] = min(arrived, arrivals.get(key, math.inf))
    return arrivals, bad


def _not_ended(idp: FaultIdp, sids: list[str]) -> list[str]:
    """Of these sessions, those SQL does not have ended."""
    from idp.models import SsoSession
    from shared.db import get_db

    if not sids:
        return []
    with idp.app.app_context():
        ended = set(
            get_db().scalars(
                select(SsoSession.id).where(
                    SsoSession.id.in_(sids), SsoSession.ended_at.is_not(None)
                )
            )
        )
    return [sid for sid in sids if sid not in ended]


def _sleep_until(wall: float) -> None:
    while (left := wall - time.time()) > 0:
        time.sleep(min(left, 0.5))


def run_scenario(served: Served, fault: Fault, lost_logins: bool = False) -> Report:
    """Load from THREADS visitors, the fault in the middle, then the checks; the report."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # thousands of request lines would bury the figures
    try:
        return _run(served, fault, lost_logins)
    finally:
        werkzeug.setLevel(level)


def _run(served: Served, fault: Fault, lost_logins: bool) -> Report:
    began = time.time()
    idp = served.idp
    with school_pair(idp) as (schools, receivers):
        run = Run(served, schools, lost_logins)
        logins = [idp.person(schools) for _ in range(THREADS)]
        visitors = [
            threading.Thread(target=Visitor(run, i, logins[i]).loop, name=f"visitor-{i}")
            for i in range(THREADS)
        ]
        old: list[tuple[Browser, str]] = []
        tap = LogTap()
        logging.getLogger().addHandler(tap)
        try:
            for login in [idp.person(schools)[0] for _ in range(THREADS)]:
                for _ in range(OLD_SESSIONS):
                    browser = Browser(idp.url)
                    old.append((browser, ""))
                    tokens = sign_in(idp.url, browser, schools[0], login, scope="openid")
                    old[-1] = (browser, unverified_claims(tokens["id_token"])["sid"])
            run.load_started = time.time()
            for thread in visitors:
                thread.start()
            try:
                with fault.watching():
                    _sleep_until(run.load_started + FAULT_AFTER)
                    run.fault_at = time.time()
                    fault.start()
                    fault.recover(run.fault_at + RECOVERY_LIMIT)
                    run.in_place_at = time.time()
                    _sleep_until(
                        max(
                            run.load_started + LOAD_SECONDS,
                            run.in_place_at + GRACE + AFTER_WINDOW,
                        )
                    )
            finally:
                run.stop.set()
                for thread in visitors:
                    thread.join(2 * REQUEST_TIMEOUT + RETRY_FOR)
                    if thread.is_alive():
                        run.note_error(f"{thread.name} still running after the load")
                run.load_stopped = time.time()

            signed_out = sum(not run.check_old(browser, sid) for browser, sid in old)
            for logout in list(run.logouts):
                run.check_dead(logout, "recheck after the run: prompt=none", retry=False)

            allowance = (
                max(
                    idp.app.config["BACKCHANNEL_TIMEOUT_SECONDS"] + DIRECT_LEASE_EXTRA,
                    WORKER_LEASE,
                )
                + BACKOFF
                + float(idp.env["IDP_WORKER_POLL_SECONDS"])
                + float(idp.env["IDP_DELIVERY_TIMEOUT"])
                + ROUND_SLACK
            )
            # A logout's rows are committed by its page and the schedule runs from then; when
            # the fault came within it, from the later of the page and storage back in place.
            deadlines = {
                lo.sid: (
                    lo.confirmed + allowance
                    if lo.confirmed + allowance < run.fault_at
                    else max(lo.confirmed, run.in_place_at) + allowance
                )
                for lo in run.logouts
            }
            wanted = {(lo.sid, c) for lo in run.logouts for c in lo.subs}
            latest = max(deadlines.values(), default=time.time())
            while True:
                arrivals, bad = _logout_tokens(run, receivers, schools)
                if wanted <= arrivals.keys() or time.time() > latest + 0.5:
                    break
                time.sleep(0.5)
            not_ended = _not_ended(idp, [lo.sid for lo in run.logouts])
        finally:
            logging.getLogger().removeHandler(tap)
            for browser, _ in old:
                browser.http.close()
        report = Report(
            name=fault.name,
            duration=0.0,
            fault_after=run.fault_at - run.load_started,
            recovery=run.in_place_at - run.fault_at,
            load=run.load_stopped - run.load_started,
            journeys=run.started,
            done=run.done,
            failures=list(run.failures),
            fault_at=run.fault_at,
            in_place_at=run.in_place_at,
            logouts=list(run.logouts),
            arrivals=arrivals,
            deadlines=deadlines,
            allowance=allowance,
            bad_tokens=bad,
            not_ended=not_ended,
            revived=list(run.revived),
            old_sessions=len(old),
            signed_out=signed_out,
            errors=list(run.errors),
            worker_exit=served.worker.poll(),
            worker_lines=list(served.output),
            app_log=list(tap.records),
            timeline=list(fault.events),
        )
    report.duration = time.time() - began
    return report
