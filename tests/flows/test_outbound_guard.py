"""Deliveries outside development: a school's host is resolved once, refused if any address is
internal, and the connection goes to the checked address itself (DNS rebinding), with the
school's name kept in Host, TLS SNI and the certificate check."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.outbox.netguard import IPAddress, PinnedAdapter, blocked_reason
from tests.flows.test_backchannel import _school_at
from tests.support import SchoolClient, free_port

LOOPBACK = ipaddress.ip_address("127.0.0.1")
PUBLIC = ipaddress.ip_address("93.184.215.14")


@dataclass
class Site:
    """A school's endpoint on loopback that records every request it gets."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)  # Host, path and SNI per request
    sni: list[str | None] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)  # the client's port: one per connection
    server: http.server.ThreadingHTTPServer | None = None

    def start(self, tls: ssl.SSLContext | None = None) -> Site:
        """Serve on 127.0.0.1:port, over TLS when given a context."""
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a school's server

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                site.seen.append({"host": self.headers.get("Host", ""), "path": self.path})
                site.peers.append(self.client_address[1])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if tls is not None:

            def note_sni(sock: ssl.SSLObject, name: str, ctx: ssl.SSLContext) -> None:
                self.sni.append(name)

            tls.sni_callback = note_sni
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site(free_port()).start()
    yield s
    s.stop()


@pytest.fixture
def production(idp_app, monkeypatch) -> None:
    monkeypatch.setitem(idp_app.config, "STUUDIUM_ENV", "production")


class Resolver:
    """A DNS of the test's own: answers each lookup with the next of its answers (the last one
    from then on), and remembers the names it was asked."""

    def __init__(self, *answers: IPAddress) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]]


def _allowing_loopback(ip: IPAddress) -> str | None:
    return None if ip == LOOPBACK else blocked_reason(ip)


@pytest.fixture
def guard(monkeypatch) -> Iterator[Callable[..., None]]:
    """Replace the production client with one whose resolver (and policy) the test sets."""
    from idp.dispatch import deliveries

    sessions: list[requests.Session] = []

    def install(
        resolver: Resolver, check: Callable[[IPAddress], str | None] = blocked_reason
    ) -> None:
        session = deliveries.new_session(partial(PinnedAdapter, resolve=resolver, check=check))
        sessions.append(session)
        monkeypatch.setattr(deliveries, "_GUARDED", session)

    yield install
    for session in sessions:
        session.close()


@pytest.fixture
def queue(idp_app) -> Iterator[Callable[[SchoolClient, str, str], int]]:
    """Put a logout or event message for a school in the outbox; removed after the test."""
    from sqlalchemy import delete, select

    from idp.models import Client, Delivery
    from shared.db import separate_transaction

    made: list[int] = []

    def add(school: SchoolClient, kind: str, sub: str) -> int:
        payload = (
            {"sid": "sid-guard", "sub": sub, "reason": "test"}
            if kind == "logout"
            else {"sub": sub, "version": 1, "changed": ["given_name"], "reason": "test"}
        )
        with idp_app.app_context(), separate_transaction() as db:
            client_pk = db.scalar(select(Client.id).where(Client.client_id == school.client_id))
            row = Delivery(kind=kind, client_id=client_pk, payload=payload)
            db.add(row)
            db.flush()
            made.append(row.id)
            return row.id

    yield add
    with idp_app.app_context(), separate_transaction() as db:
        db.execute(delete(Delivery).where(Delivery.id.in_(made)))


def _attempt(idp_app, delivery_id: int) -> tuple[Any, tuple[str, str | None]]:
    from idp.dispatch.deliveries import attempt_now
    from idp.models import Delivery
    from shared.db import get_db

    with idp_app.app_context():
        [outcome] = attempt_now(idp_app, [delivery_id])
        row = get_db().get(Delivery, delivery_id)
        assert row is not None
        state = (row.state, row.last_error)
        get_db().rollback()
    return outcome, state


# ------------------------------------------------------------------------- refused


@pytest.mark.parametrize("kind", ["logout", "event"])
def test_a_name_resolving_to_loopback_is_refused_and_nothing_is_sent(
    idp_app, make_person, site, production, guard, queue, kind
):
    resolver = Resolver(LOOPBACK)
    guard(resolver)
    school = _school_at(idp_app, f"http://school.test:{site.port}")
    person = make_person(school)
    outcome, (state, error) = _attempt(idp_app, queue(school, kind, person.sub))
    assert (outcome.delivered, outcome.status, outcome.error) == (False, None, "blocked_address")
    assert (state, error) == ("pending", "blocked_address")  # retried: the school may fix it
    assert resolver.asked == ["school.test"]
    assert site.seen == []


def test_the_production_client_refuses_localhost_by_the_system_resolver(
    idp_app, make_person, site, production, queue
):
    school = _school_at(idp_app, f"http://localhost:{site.port}")
    outcome, _state = _attempt(idp_app, queue(school, "logout", make_person(school).sub))
    assert outcome.error == "blocked_address"
    assert site.seen == []


def test_a_rebinding_name_is_connected_to_the_address_that_was_checked(
    idp_app, make_person, site, production, guard, queue, monkeypatch
):
    # Public when checked, loopback when asked again: a second lookup would reach the site.
    resolver = Resolver(PUBLIC, LOOPBACK)
    guard(resolver)
    dialled: list[tuple[str, int]] = []

    def dial(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        dialled.append(address)
        raise ConnectionRefusedError("the test's stand-in for the internet")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", dial)
    school = _school_at(idp_app, f"http://school.test:{site.port}")
    outcome, _state = _attempt(idp_app, queue(school, "logout", make_person(school).sub))
    assert (outcome.delivered, outcome.error) == (False, "ConnectionError")
    assert dialled == [(str(PUBLIC), site.port)]
    assert resolver.asked == ["school.test"]
    assert site.seen == []


# ------------------------------------------------------------------------- delivered


@pytest.mark.parametrize("kind", ["logout", "event"])
def test_an_allowed_address_is_reached_through_the_pin_with_the_schools_host(
    idp_app, make_person, site, production, guard, queue, kind
):
    resolver = Resolver(LOOPBACK)
    guard(resolver, check=_allowing_loopback)
    school = _school_at(idp_app, f"http://school.test:{site.port}")
    outcome, (state, _error) = _attempt(idp_app, queue(school, kind, make_person(school).sub))
    assert outcome.delivered and state == "delivered"
    path = "/auth/backchannel-logout" if kind == "logout" else "/auth/events"
    assert site.seen == [{"host": f"school.test:{site.port}", "path": path}]
    assert resolver.asked == ["school.test"]


def test_a_pinned_connection_is_kept_alive_for_the_next_message(site):
    from idp.dispatch import deliveries

    resolver = Resolver(LOOPBACK)
    http = deliveries.new_session(
        partial(PinnedAdapter, resolve=resolver, check=_allowing_loopback)
    )
    try:
        for _ in range(3):
            resp = http.post(f"http://school.test:{site.port}/auth/events", data="x", timeout=5)
            assert resp.status_code == 200
    finally:
        http.close()
    assert len(site.seen) == 3 and len(set(site.peers)) == 1  # one connection for all three
    assert resolver.asked == ["school.test"] * 3  # each message checks the name anew


def test_development_delivers_as_before_without_the_guard(idp_app, make_person, site, guard, queue):
    assert idp_app.config["STUUDIUM_ENV"] == "development"
    resolver = Resolver(PUBLIC)
    guard(resolver)
    school = _school_at(idp_app, f"http://127.0.0.1:{site.port}")
    outcome, _state = _attempt(idp_app, queue(school, "logout", make_person(school).sub))
    assert outcome.delivered
    assert resolver.asked == []  # no lookup of the guard's: development's path is unchanged
    assert site.seen[0]["host"] == f"127.0.0.1:{site.port}"


# ------------------------------------------------------------------------- TLS on the name


def _tls_files(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for name signed by it: (cert, key, CA) PEM files."""
    now = dt.datetime.now(dt.UTC)

    def issue(subject: str, key: Any, issuer: x509.Name, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Guard test CA")])
    ca = issue("Guard test CA", ca_key, ca_name, ca_key, ca=True)
    cert = issue(name, key, ca.subject, ca_key, ca=False)
    paths = tmp_path / f"{name}.pem", tmp_path / f"{name}.key", tmp_path / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


@pytest.fixture
def tls_site(tmp_path) -> Iterator[tuple[Site, Path]]:
    cert, key, ca = _tls_files(tmp_path, "school.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    s = Site(free_port()).start(tls=context)
    yield s, ca
    s.stop()


@pytest.mark.parametrize(("name", "verified"), [("school.test", True), ("other.test", False)])
def test_tls_to_a_pinned_address_sends_and_verifies_the_schools_name(tls_site, name, verified):
    site, ca = tls_site
    from idp.dispatch import deliveries

    http = deliveries.new_session(
        partial(PinnedAdapter, resolve=Resolver(LOOPBACK), check=_allowing_loopback)
    )
    try:
        if verified:
            resp = http.post(
                f"https://{name}:{site.port}/auth/events", data="x", verify=str(ca), timeout=5
            )
            assert resp.status_code == 200
            assert site.seen == [{"host": f"{name}:{site.port}", "path": "/auth/events"}]
        else:  # the certificate is for school.test: a name it does not carry is refused
            with pytest.raises(requests.exceptions.SSLError):
                http.post(
                    f"https://{name}:{site.port}/auth/events", data="x", verify=str(ca), timeout=5
                )
            assert site.seen == []
        assert site.sni == [name]
    finally:
        http.close()
