"""The outbound address guard: which hosts a school may register outside development, which
addresses a delivery may reach, and the pool a delivery's connection is pinned to."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

import pytest
import requests
from urllib3 import HTTPSConnectionPool

from idp.outbox.netguard import (
    BlockedAddress,
    IPAddress,
    PinnedAdapter,
    blocked_reason,
    host_refusal,
    literal_address,
)
from idp.tenants.schools import RegistrationError, add_client, add_school, check_uri

INTERNAL_HOSTS = [
    ("169.254.169.254", "metadata"),
    ("10.0.0.5", "private"),
    ("192.168.1.1", "private"),
    ("172.16.0.1", "private"),
    ("100.64.0.1", "CGNAT"),
    ("127.0.0.1", "loopback"),
    ("[::1]", "loopback"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "link-local"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:7f00:1]", "loopback"),
    ("0x7f.1", "loopback"),
    ("2130706433", "loopback"),
    ("127.1", "loopback"),
    ("017700000001", "loopback"),
    ("localhost", "loopback name"),
    ("LocalHost.", "loopback name"),
    ("app.localhost", "loopback name"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("[fd00:ec2::254]", "metadata"),
    ("[fc00::5]", "private"),
    ("168.63.129.16", "metadata"),
    ("192.0.0.192", "metadata"),
    ("[64:ff9b::a00:1]", "NAT64"),
    ("[fec0::1]", "site-local"),
    ("１２７.０.０.１", "loopback"),  # fullwidth digits: IDNA makes them 127.0.0.1
]
PUBLIC_HOSTS = ["kool.example.ee", "xn--kool-5qa.ee", "8.8.8.8", "[2606:4700:4700::1111]"]


def _new_slug() -> str:
    return "g-" + secrets.token_hex(5)


# ----------------------------------------------------------------- registration (check_uri)


@pytest.mark.parametrize(("host", "why"), INTERNAL_HOSTS)
@pytest.mark.parametrize("path", ["/auth/backchannel-logout", "/auth/events"])
def test_an_internal_host_is_refused_outside_development(host, why, path):
    uri = f"https://{host}:8443{path}"
    with pytest.raises(RegistrationError, match="must point at a public host") as refused:
        check_uri(uri, development=False)
    assert why in str(refused.value) and uri in str(refused.value)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_a_public_host_is_accepted_outside_development(host):
    uri = f"https://{host}/auth/backchannel-logout"
    assert check_uri(uri, development=False) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5001/auth/events",
        "http://localhost:5001/cb",
        "https://10.0.0.5/auth/backchannel-logout",
    ],
)
def test_development_still_registers_local_schools(uri):
    assert check_uri(uri, development=True) == uri


@pytest.mark.parametrize(
    "uri", ["https://[::1/cb", "https://kool.example.ee:99999/cb", "https://1.2.3.4 x/cb"]
)
def test_a_malformed_host_is_a_registration_error(uri):
    with pytest.raises(RegistrationError):
        check_uri(uri, development=False)


@pytest.mark.parametrize(
    "field",
    ["backchannel_logout_uri", "frontchannel_logout_uri", "events_uri", "initiate_login_uri"],
)
def test_add_client_refuses_an_internal_outbound_uri(idp_app, field):
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        try:
            school = add_school(
                db, _new_slug(), "K", "https://kool.example.ee", development=False
            ).client.school
            uris: dict[str, Any] = {field: "https://169.254.169.254/latest"}
            with pytest.raises(RegistrationError, match="169.254.169.254 is a cloud metadata"):
                add_client(
                    db, school, "App", ["https://kool.example.ee/cb"], development=False, **uris
                )
        finally:
            db.rollback()


def test_add_school_refuses_an_internal_address_and_development_allows_it(idp_app):
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        try:
            with pytest.raises(RegistrationError, match="10.0.0.5 is private"):
                add_school(db, _new_slug(), "K", "https://10.0.0.5", development=False)
            issued = add_school(db, _new_slug(), "K", "http://127.0.0.1:5001", development=True)
            assert issued.client.backchannel_logout_uri == (
                "http://127.0.0.1:5001/auth/backchannel-logout"
            )
        finally:
            db.rollback()


# ------------------------------------------------------------------- the address policy


@pytest.mark.parametrize(
    "spelling",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "0x7f.0.0.1",
        "2130706433",
        "017700000001",
        "[::ffff:127.0.0.1]",
    ],
)
def test_every_spelling_of_loopback_is_read_as_the_address(spelling):
    ip = literal_address(spelling)
    assert ip is not None and blocked_reason(ip) == "loopback"


@pytest.mark.parametrize("name", ["kool.example.ee", "127.0.0.1.nip.io", "1e2", "10.0.0.5."])
def test_a_host_name_is_not_an_address(name):
    assert literal_address(name) is None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_may_be_reached(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "address",
    [
        "100.100.100.200",
        "192.0.0.8",
        "192.88.99.1",
        "198.18.0.1",
        "2002:a00:1::",
        "::a00:1",
        "2001:db8::1",
        "255.255.255.255",
        "0.1.2.3",
    ],
)
def test_special_purpose_addresses_may_not(address):
    assert blocked_reason(ipaddress.ip_address(address)) is not None


def test_a_name_is_refused_only_as_a_literal_or_loopback_name():
    assert host_refusal("school.example.ee") is None
    assert host_refusal("localhost") == "a loopback name"


# --------------------------------------------------------------- the pinned connection


def _adapter(*answers: str) -> PinnedAdapter:
    addresses: list[IPAddress] = [ipaddress.ip_address(a) for a in answers]
    return PinnedAdapter(resolve=lambda host, port: addresses)


def _prepared(url: str) -> requests.PreparedRequest:
    return requests.Request("POST", url, data={"x": "1"}).prepare()


def test_the_pool_connects_to_the_checked_address_and_verifies_the_name():
    adapter = _adapter("93.184.215.14")
    pool = adapter.get_connection_with_tls_context(
        _prepared("https://kool.example.ee:8443/auth/events"), verify=True
    )
    assert isinstance(pool, HTTPSConnectionPool)
    assert (pool.host, pool.port) == ("93.184.215.14", 8443)
    assert pool.conn_kw["server_hostname"] == "kool.example.ee"
    assert pool.assert_hostname == "kool.example.ee"


def test_the_request_names_the_school_in_host():
    request = _prepared("http://kool.example.ee:8080/auth/backchannel-logout")
    _adapter("93.184.215.14").add_headers(request)
    assert request.headers["Host"] == "kool.example.ee:8080"


def test_one_internal_answer_among_public_ones_blocks_the_host():
    with pytest.raises(BlockedAddress, match="10.0.0.1: private"):
        _adapter("93.184.215.14", "10.0.0.1").get_connection_with_tls_context(
            _prepared("https://kool.example.ee/auth/events"), verify=True
        )


def test_a_name_that_does_not_resolve_is_a_connection_error():
    def fail(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    adapter = PinnedAdapter(resolve=fail)
    for resolver in (adapter, _adapter()):
        with pytest.raises(requests.ConnectionError) as failed:
            resolver.get_connection_with_tls_context(
                _prepared("https://kool.example.ee/auth/events"), verify=True
            )
        assert not isinstance(failed.value, BlockedAddress)
