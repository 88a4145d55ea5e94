"""What ops see: /metrics counts logins by method and result, tokens by grant, SSO jumps,
rate-limit hits and delivered logouts, and reads undelivered messages from SQL; it answers
only scrapers on the allowed networks."""

from __future__ import annotations

import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests.flows.test_backchannel import _school_at
from tests.support import (
    Browser,
    LiveServer,
    Receiver,
    authorize_url,
    free_port,
    pkce_pair,
    refresh,
    sign_in,
)


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_idp_metrics_count_what_happened(idp: str, idp_app: Flask, make_person, link_account):
    ok, failing = Receiver(), Receiver(status=503)
    try:
        first, second = _school_at(idp_app, ok.url), _school_at(idp_app, failing.url)
        person = make_person(first)
        link_account(person, second, ["parent"])
        before = _scrape(idp)

        wrong = Browser(idp)
        _, challenge = pkce_pair()
        page = wrong.follow(authorize_url(idp, first, challenge), first.redirect_uri)
        assert (
            wrong.submit_login(
                page, person.email, "vale-parool-123", first.redirect_uri
            ).status_code
            == 200
        )
        browser = Browser(idp)
        tokens = sign_in(idp, browser, first, person, scope="openid offline_access")
        sign_in(idp, browser, second, person, scope="openid")  # no login page: a jump
        assert refresh(idp, first, tokens["refresh_token"]).status_code == 200
        assert (
            browser.http.get(
                f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10
            ).status_code
            == 200
        )
        after = _scrape(idp)
    finally:
        ok.close()
        failing.close()

    assert (
        _delta(before, after, "stuudium_idp_logins_total", method="password", result="wrong") == 1
    )
    assert _delta(before, after, "stuudium_idp_logins_total", method="password", result="ok") == 1
    assert (
        _delta(before, after, "stuudium_idp_tokens_issued_total", grant="authorization_code") == 2
    )
    assert _delta(before, after, "stuudium_idp_tokens_issued_total", grant="refresh_token") == 1
    assert _delta(before, after, "stuudium_idp_sso_jumps_total") == 1
    assert _delta(before, after, "stuudium_idp_delivery_latency_seconds_count", kind="logout") == 1
    # The school that answered 503 keeps its logout message pending, read from SQL.
    assert _delta(before, after, "stuudium_idp_deliveries", kind="logout", state="pending") == 1
    assert ("stuudium_idp_sync_lag_seconds", ()) in after
    assert (
        _delta(
            before, after, "stuudium_http_requests_total", app="idp", route="/token", status="200"
        )
        == 3
    )


def test_a_locked_login_counts_as_rate_limited(
    idp: str, idp_app: Flask, make_school, make_person, monkeypatch
):
    monkeypatch.setitem(idp_app.config, "LOGIN_MAX_FAILURES", 1)
    school = make_school()
    person = make_person(school)
    before = _scrape(idp)
    for _ in range(2):
        browser = Browser(idp)
        _, challenge = pkce_pair()
        page = browser.follow(authorize_url(idp, school, challenge), school.redirect_uri)
        browser.submit_login(page, person.email, "vale-parool-123", school.redirect_uri)
    after = _scrape(idp)
    assert _delta(before, after, "stuudium_idp_rate_limited_total", limit="login") == 1
    assert (
        _delta(before, after, "stuudium_idp_logins_total", method="password", result="wrong") == 2
    )


def test_metrics_answer_only_allowed_networks(idp_app: Flask, make_tenant, school_app: Flask):
    from idp import create_app

    tenant = make_tenant()
    before = _scrape(tenant.url)
    assert requests.get(f"{tenant.url}/readyz", timeout=10).status_code == 200
    assert (
        _delta(
            before,
            _scrape(tenant.url),
            "stuudium_http_requests_total",
            app="school_instance",
            route="/readyz",
            status="200",
        )
        == 1
    )
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": idp_app.config["DATABASE_URL"],
            "REDIS_URL": idp_app.config["REDIS_URL"],
            "METRICS_ALLOW": "10.0.0.0/8",
        }
    )
    server = LiveServer(app, free_port()).start()
    try:
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_forwarded_headers_count_only_behind_a_configured_proxy(idp: str, idp_app: Flask):
    from idp import create_app

    public = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    # Not configured: a client's own X-Forwarded-For is ignored (it is still 127.0.0.1).
    assert requests.get(f"{idp}/metrics", headers=public, timeout=10).status_code == 200
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": idp_app.config["DATABASE_URL"],
            "REDIS_URL": idp_app.config["REDIS_URL"],
            "PROXY_COUNT": 1,
        }
    )
    server = LiveServer(app, free_port()).start()
    try:
        # Behind one proxy: the address it forwards is the client's, a public one here.
        assert requests.get(f"{server.url}/metrics", headers=public, timeout=10).status_code == 404
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 200
    finally:
        server.stop()
