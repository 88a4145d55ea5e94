"""Scale-out on this machine: nginx in front of three IdP gunicorn processes and two delivery
workers sharing one PostgreSQL and one Redis. Journeys (a password login at one school, a
silent jump to another, logout) run concurrently while one IdP process is SIGKILLed and
restarted: no journey fails except through a request in flight to the killed process (the
client retries such a request once), no logout message or sync event is lost (counted at the
schools), and sessions started before the restart go on."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import requests
from prometheus_client.parser import text_string_to_metric_families
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select
from urllib3.util.retry import Retry

from tests.faults.conftest import Postgres, RedisServer, fault_idp, wait_for
from tests.scale.cluster import IdpProcess, Nginx
from tests.support import (
    Browser,
    PersonLogin,
    Receiver,
    SchoolClient,
    authorize_url,
    callback_params,
    obtain_code,
    pkce_pair,
    unverified_claims,
)

JOURNEYS, THREADS, SURVIVORS, CHANGES = 30, 4, 3, 10
TIME_LIMIT = 90.0  # seconds for the load; journeys not started by then are not started


class CountedRetry(Retry):
    """Retry a request that never got an answer (connection refused or reset, 502/504 from
    nginx when its process died) once, and note it."""

    def __init__(self, *args: Any, noted: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.noted = noted if noted is not None else []

    def new(self, **kwargs: Any) -> CountedRetry:
        retry = super().new(**kwargs)
        retry.noted = self.noted
        return retry

    def increment(
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Self:
        self.noted.append(f"{method} {url}")
        return super().increment(method, url, *args, **kwargs)


class CutOffRetrying(requests.Session):
    """Also retry once a request whose answer was cut off after its headers (the process was
    killed between writing them and the body, and nginx had already passed them on), and note
    it: that request, too, was in flight to the killed process."""

    def __init__(self, noted: list[str]) -> None:
        super().__init__()
        self.noted = noted

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send; on a body cut short, note it and send the same request once more."""
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.ChunkedEncodingError:
            self.noted.append(f"{request.method} {request.url} (answer cut off)")
            return super().send(request, **kwargs)


def _browser(issuer: str, noted: list[str]) -> Browser:
    browser = Browser(issuer)
    browser.http = CutOffRetrying(noted)
    retry = CountedRetry(
        total=1,
        connect=1,
        read=1,
        status=1,
        allowed_methods=None,
        status_forcelist=(502, 504),
        raise_on_status=False,
        respect_retry_after_header=False,
        noted=noted,
    )
    browser.http.mount("http://", HTTPAdapter(max_retries=retry))
    return browser


@dataclass
class Outcome:
    """One journey: the session it made, whether it went through, the requests retried."""

    sid: str | None = None
    error: str | None = None
    retried: list[str] = field(default_factory=list)


def _sign_in(
    issuer: str, browser: Browser, school: SchoolClient, login: PersonLogin, scope: str
) -> dict[str, Any]:
    """sign_in, with the school's token request also through the retrying session."""
    code, verifier = obtain_code(browser, issuer, school, login, scope=scope)
    resp = browser.http.post(
        f"{issuer}/token",
        timeout=10,
        auth=(school.client_id, school.client_secret or ""),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": school.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _journey(issuer: str, schools: list[SchoolClient], logins: list[PersonLogin]) -> Outcome:
    outcome = Outcome()
    browser = _browser(issuer, outcome.retried)
    try:
        first = _sign_in(issuer, browser, schools[0], logins[0], scope="openid offline_access")
        outcome.sid = unverified_claims(first["id_token"])["sid"]
        jumped = _sign_in(issuer, browser, schools[1], logins[1], scope="openid")
        assert unverified_claims(jumped["id_token"])["sid"] == outcome.sid
        page = browser.http.get(
            f"{issuer}/logout", timeout=10, params={"id_token_hint": first["id_token"]}
        )
        assert page.status_code == 200, page.status_code
    except (AssertionError, requests.RequestException, KeyError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"[:300]
    return outcome


def _silent_code(browser: Browser, base: str, school: SchoolClient) -> dict[str, str]:
    _, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(base, school, challenge, prompt="none"), allow_redirects=False, timeout=10
    )
    return callback_params(resp)


def _logouts(receiver: Receiver) -> Counter[str]:
    return Counter(
        unverified_claims(p["logout_token"][0])["sid"]
        for p in list(receiver.posts)
        if "logout_token" in p
    )


def _events(receiver: Receiver) -> set[tuple[str, int]]:
    found = set()
    for body, kind in zip(list(receiver.bodies), list(receiver.content_types), strict=False):
        if kind.startswith("application/secevent+jwt"):
            claims = unverified_claims(body)
            [event] = claims["events"].values()
            found.add((claims["sub_id"]["sub"], event["version"]))
    return found


def _samples(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples (with these labels) at a /metrics URL."""
    text = requests.get(url, timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def _served(process: IdpProcess, route: str) -> float:
    """Requests to route that one process answered (its own /metrics, all its workers)."""
    return _samples(f"{process.url}/metrics", "stuudium_http_requests_total", route=route)


def test_scale_out_survives_a_killed_idp_process(
    tmp_path: Path,
    postgres: Postgres,
    redis_server: RedisServer,
    receivers: list[Receiver],
    monkeypatch,
):
    from idp.models import Account, Delivery
    from idp.people.sync import record_person_change
    from shared.db import get_db
    from tests.support import free_port

    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    nginx_port, ports = free_port(), [free_port() for _ in range(3)]
    issuer = f"http://127.0.0.1:{nginx_port}"
    seed = fault_idp(
        tmp_path, postgres.url, redis_server.url, ISSUER=issuer, DELIVERY_BACKOFF_SECONDS=0
    )
    seed.env.update(
        {
            "IDP_ISSUER": issuer,
            "IDP_FORM_RATE_LIMIT": "1000000 per minute",
            "STUUDIUM_PROXY_COUNT": "1",
            "GUNICORN_WORKERS": "1",
            "IDP_CLIENT_CACHE_SECONDS": "10",
        }
    )
    # The second school is down for its first messages: the workers deliver those later.
    receivers.extend([Receiver(), Receiver()])
    receivers[1].script = [503] * 15
    schools = [seed.school(r.url) for r in receivers]
    people = [seed.person(schools) for _ in range(JOURNEYS + SURVIVORS)]

    idps = [IdpProcess(p, seed.env, tmp_path / f"idp-{p}.log") for p in ports]
    nginx = Nginx(tmp_path, nginx_port, ports)
    try:
        for process in idps:
            process.start()
        nginx.start()
        worker_ports = [free_port(), free_port()]
        workers = [seed.start_worker(IDP_WORKER_METRICS_PORT=str(p)) for p in worker_ports]

        survivors = [_browser(issuer, []) for _ in range(SURVIVORS)]
        for browser, logins in zip(survivors, people[JOURNEYS:], strict=True):
            _sign_in(issuer, browser, schools[0], logins[0], scope="openid")

        done: list[Outcome] = []
        lock = threading.Lock()
        started = time.monotonic()

        def run(logins: list[PersonLogin]) -> None:
            if time.monotonic() - started > TIME_LIMIT:
                return
            outcome = _journey(issuer, schools, logins)
            with lock:
                done.append(outcome)

        victim = idps[1]
        versions: list[tuple[str, str, int]] = []
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(run, logins) for logins in people[:JOURNEYS]]
            wait_for(lambda: len(done) >= JOURNEYS // 4, 60, "the first journeys")
            victim.kill()
            before_kill = len(done)
            # Person changes while one process is down: sync events to both schools.
            with seed.app.app_context():
                db = get_db()
                for logins in people[:CHANGES]:
                    account = db.scalar(select(Account).where(Account.sub == logins[0].sub))
                    assert account is not None
                    version = record_person_change(
                        db, account.person_id, ["email"], "scale-test", None
                    )
                    db.commit()
                    versions += [(logins[0].sub, logins[1].sub, version)]
            time.sleep(1.0)
            victim.start()
            for future in futures:
                future.result(timeout=TIME_LIMIT + 60)

        assert len(done) == JOURNEYS, "every journey ran within the time limit"
        assert before_kill < JOURNEYS - THREADS, "the kill came in the middle of the load"
        # nginx balanced the requests over the processes (those that ran throughout).
        for process in (idps[0], idps[2]):
            assert _served(process, "/token") > 0 and _served(process, "/login") > 0
        failed = [o for o in done if o.error]
        assert all(o.retried for o in failed), [o.error for o in failed if not o.retried]
        assert len(failed) <= THREADS, [o.error for o in failed]

        # Sessions made before the kill go on: silent logins through the proxy, and at the
        # restarted process itself.
        for browser in survivors:
            assert "code" in _silent_code(browser, issuer, schools[1])
            assert "code" in _silent_code(browser, victim.url, schools[0])

        # Every logout of a journey reaches both schools; every change, both schools.
        expected = {o.sid for o in done if o.sid and not o.error}
        with seed.app.app_context():

            def all_delivered() -> bool:
                waiting = get_db().scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.state != "delivered")
                )
                get_db().rollback()
                return waiting == 0

            wait_for(all_delivered, 60, "every delivery delivered")
        for receiver in receivers:
            assert expected <= set(_logouts(receiver)), expected - set(_logouts(receiver))
        assert {(a, v) for a, _, v in versions} <= _events(receivers[0])
        assert {(b, v) for _, b, v in versions} <= _events(receivers[1])
        assert receivers[1].script == [], "the down school's first messages were retried"
        for worker in workers:
            assert worker.poll() is None, "the workers kept running"
        # The workers delivered what the down school refused at first (their own /metrics).
        by_workers = sum(
            _samples(f"http://127.0.0.1:{p}/metrics", "stuudium_idp_delivery_latency_seconds_count")
            for p in worker_ports
        )
        assert by_workers >= 1
    finally:
        nginx.stop()
        for process in idps:
            process.stop()
        seed.stop()
        seed.app.extensions["db_engine"].dispose()
