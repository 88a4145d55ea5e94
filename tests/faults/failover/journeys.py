"""The load of a failover run: visitors, each a thread with a person of its own, loop journeys
(a password sign-in at school A, a silent one at B, an RP-initiated logout pressed again after
an accepted failure, the old cookie refused at both); Run is their shared record and the checks
after the load (old sessions still signed in, logged-out sessions still dead)."""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.faults.failover.failures import (
    ACCEPTED,
    Failure,
    StepFailed,
    classify,
    excerpt_of,
    location_of,
)
from tests.faults.failover.plan import (
    GRACE,
    PAUSE_AFTER_FAILURE,
    REQUEST_TIMEOUT,
    RETRY_FOR,
    RETRY_PAUSE,
)
from tests.faults.failover.served import Served
from tests.support import (
    CSRF_RE,
    IX_RE,
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    pkce_pair,
    unverified_claims,
)

LOGGED_OUT = "Oled välja logitud"
SCHOOL_RE = re.compile(r'<li data-state="([a-z]+)"><strong>([^<]+)</strong>')


@dataclass
class Logout:
    """A logout the logged-out page confirmed."""

    sid: str
    cookie: str  # the SSO cookie the browser had before the logout
    subs: dict[str, str]  # client_id -> the person's sub at that school
    confirmed: float  # time.time() of the logged-out page
    page: list[tuple[str, str]]  # (state, school name) the page listed
    retried: bool  # the page came after an accepted failure of an earlier attempt


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
            excerpt or (excerpt_of(resp) if resp is not None else ""),
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
        location = location_of(resp)
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
            if resp.status_code in (302, 303) and "error=login_required" in location_of(resp):
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
        location = location_of(resp)
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
        if resp.status_code != 303 or not location_of(resp).startswith(f"{run.issuer}/login"):
            raise run.fail("authorize A", resp)
        started = time.time()  # the interaction is in Redis from now on
        page = run.get("login form", browser.http, location_of(resp))
        if page.status_code != 200 or not (CSRF_RE.search(page.text) and IX_RE.search(page.text)):
            raise run.fail("login form", page, issued=started)
        try:
            posted = browser.post_login(page, login.email, login.password, REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            raise run.no_answer("login post", exc) from exc
        if posted.status_code != 303 or "/authorize/resume" not in location_of(posted):
            raise run.fail("login post", posted, issued=started)
        resumed = run.get("resume", browser.http, location_of(posted))
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
                        "logout", resp, "logged-out page without the schools", excerpt_of(resp)
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
