"""The logs of a login, a token exchange and a one-time link's use are JSON lines with request
ids, and never hold the password, a token, a code, the link or the personal code."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import requests

from shared.logs import JsonFormatter
from tests.flows.mail_links import follow_to, link_of, use_link
from tests.support import CSRF_RE, Browser, obtain_code, redeem


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record of our apps' loggers, as the JSON lines production writes. The test
    servers' own access log (werkzeug's) and the test mail catcher's are not ours: gunicorn's
    access log is off in deploy/."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda record: not record.name.startswith(("werkzeug", "mail.log")))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # production's level
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def test_logs_hold_request_ids_and_no_secrets(idp, make_tenant, make_person, inbox, captured):
    tenant = make_tenant()
    person = make_person(tenant.client, isikukood="49403136526")
    browser = Browser(idp)
    code, verifier = obtain_code(
        browser, idp, tenant.client, person, scope="openid profile offline_access"
    )
    tokens = redeem(idp, tenant.client, code, verifier).json()
    assert "access_token" in tokens

    url = f"{idp}/s/{tenant.client.slug}/access"
    asking = Browser(idp)
    csrf = CSRF_RE.search(asking.http.get(url, timeout=10).text)
    assert csrf
    asking.http.post(url, data={"csrf_token": csrf.group(1), "email": person.email}, timeout=10)
    [message] = inbox(person.email)
    _, link_token = link_of(message)
    linked = Browser(idp)
    follow_to(linked, use_link(linked, message), tenant.url)

    traced = requests.get(f"{idp}/healthz", headers={"X-Request-Id": "ops-trace-42"}, timeout=10)
    assert traced.headers["X-Request-Id"] == "ops-trace-42"
    forged = requests.get(f"{idp}/healthz", headers={"X-Request-Id": 'a"b{}'}, timeout=10)
    assert forged.headers["X-Request-Id"] != 'a"b{}'  # not echoed: a fresh id instead

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "stuudium.access"]
    routes = {(e["app"], e["method"], e["route"], e["status"]) for e in access}
    assert {
        ("idp", "POST", "/login", 303),
        ("idp", "POST", "/token", 200),
        ("idp", "POST", "/s/<slug>/signin", 303),
        ("school_instance", "GET", "/auth/callback", 303),
    } <= routes
    assert all(e["request_id"] for e in access)
    assert any(e["request_id"] == "ops-trace-42" and e["route"] == "/healthz" for e in access)

    text = captured.getvalue()
    secrets = {
        "password": person.password,
        "isikukood": "49403136526",
        "code": code,
        "link": link_token,
        "client secret": tenant.client.client_secret or "",
        **{name: tokens[name] for name in ("access_token", "id_token", "refresh_token")},
    }
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert not leaked, leaked


def test_an_exception_is_logged_by_type_and_place_not_by_message(captured):
    try:
        raise ValueError("isikukood 49403136526 in a statement's parameters")
    except ValueError:
        logging.getLogger("idp.test").exception("failed")
    [entry] = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert entry["msg"] == "failed" and entry["error"] == "ValueError"
    place, function = entry["stack"][-1].split(" ")
    assert place.split(":")[0].endswith("tests/flows/test_logs.py")
    assert function == "test_an_exception_is_logged_by_type_and_place_not_by_message"
    assert "49403136526" not in captured.getvalue()
