"""A failover scenario from start to end: old sessions signed in first, THREADS visitors' load
with the fault in the middle, then the checks (old sessions, logged-out sessions, the logout
tokens against the delivery schedule, the sessions ended in SQL), gathered into a Report."""

from __future__ import annotations

import logging
import math
import threading
import time

import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from tests.faults.conftest import LOGOUT_EVENT, FaultIdp
from tests.faults.failover.faults import Fault
from tests.faults.failover.journeys import Run, Visitor
from tests.faults.failover.plan import (
    AFTER_WINDOW,
    BACKOFF,
    DIRECT_LEASE_EXTRA,
    FAULT_AFTER,
    GRACE,
    LOAD_SECONDS,
    OLD_SESSIONS,
    RECOVERY_LIMIT,
    REQUEST_TIMEOUT,
    RETRY_FOR,
    ROUND_SLACK,
    THREADS,
    WORKER_LEASE,
)
from tests.faults.failover.report import LogTap, Report
from tests.faults.failover.served import Served, school_pair
from tests.support import Browser, Receiver, SchoolClient, sign_in, unverified_claims


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
