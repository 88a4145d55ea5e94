"""Seeding the benchmark: one school and client, persons with live SSO sessions, and pools of
single-use inputs (codes in Redis, refresh tokens in SQL, login interactions with CSRF cookies),
each written to a file of form bodies for pool.lua."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import requests
from flask import Flask
from sqlalchemy import insert

from idp.models import Person, RefreshToken
from idp.oidc.grants import s256
from idp.people.accounts import create_account, hash_password
from idp.sso import sessions
from idp.store import codes, interactions
from idp.tenants.schools import add_school
from shared.db import get_db
from shared.security import sha256_hex
from tests.support import CSRF_RE

PASSWORD = "mets-kask-" + secrets.token_hex(6)
CODE_SCOPE = "openid profile email"
REFRESH_SCOPE = "openid profile email offline_access"
SEED_CODE_TTL = 900


@dataclass(frozen=True)
class SeededPerson:
    """A seeded person with one account and one live SSO session."""

    person_id: int
    account_id: int
    email: str
    sid: str
    session_expires: dt.datetime


@dataclass(frozen=True)
class Fixture:
    """The registered school client and its persons."""

    client_pk: int
    client_id: str
    client_secret: str
    redirect_uri: str
    people: list[SeededPerson]
    school_pk: int

    @property
    def basic_auth(self) -> str:
        """The client_secret_basic Authorization header value (RFC 6749 §2.3.1)."""
        raw = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(raw.encode()).decode()


def register(app: Flask, persons: int) -> Fixture:
    """Register one school (its client uses client_secret_basic) and persons with sessions."""
    tag = secrets.token_hex(4)
    password_hash = hash_password(PASSWORD)  # one argon2id hash, shared: seeding stays fast
    with app.app_context():
        db = get_db()
        issued = add_school(
            db,
            f"bench-{tag}",
            "Benchmark kool",
            f"http://127.0.0.1:9/bench-{tag}",
            development=True,
        )
        client = issued.client
        assert issued.secret is not None
        accounts = []
        for i in range(persons):
            account = create_account(
                db,
                client.school_id,
                email=f"bench{i}-{tag}@example.ee",
                given_name="Mari",
                family_name="Maasikas",
                roles=["parent"],
            )
            person = db.get(Person, account.person_id)
            assert person is not None
            person.password_hash = password_hash
            accounts.append(account)
        db.commit()
        people = []
        for account in accounts:
            _secret, live = sessions.create(
                db, account.person_id, account.id, ["pwd"], "low", "stuudium-bench"
            )
            assert account.login_email is not None
            people.append(
                SeededPerson(
                    account.person_id,
                    account.id,
                    account.login_email,
                    live.sid,
                    dt.datetime.fromtimestamp(live.exp, dt.UTC),
                )
            )
        return Fixture(
            client.id,
            client.client_id,
            issued.secret,
            client.redirect_uris[0],
            people,
            client.school_id,
        )


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write one request per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def codes_pool(app: Flask, fx: Fixture, n: int) -> list[str]:
    """Store n codes straight in Redis (as authorize.issue_code does, with a longer TTL) and
    return the token request bodies that redeem them."""
    bodies = []
    with app.app_context():
        pipe = app.extensions["redis"].pipeline(transaction=False)
        for i in range(n):
            person = fx.people[i % len(fx.people)]
            verifier = secrets.token_urlsafe(48)
            grant_id = secrets.token_urlsafe(16)
            payload: dict[str, Any] = {
                "redirect_uri": fx.redirect_uri,
                "scope": CODE_SCOPE,
                "code_challenge": s256(verifier),
                "nonce": secrets.token_urlsafe(8),
                "claims": None,
                "sid": person.sid,
                "account_id": person.account_id,
                "grant_id": grant_id,
            }
            code = codes.issue(fx.client_id, grant_id, payload, SEED_CODE_TTL, pipe)
            bodies.append(
                urlencode(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": fx.redirect_uri,
                        "code_verifier": verifier,
                    }
                )
            )
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
    return bodies


def refresh_pool(app: Flask, fx: Fixture, n: int) -> list[str]:
    """Insert n live refresh tokens (as the code exchange stores them, scope with
    offline_access, bound to live sessions) and return the refresh request bodies."""
    bodies = []
    rows = []
    now = dt.datetime.now(dt.UTC)
    for i in range(n):
        person = fx.people[i % len(fx.people)]
        token = secrets.token_urlsafe(32)
        rows.append(
            {
                "token_hash": sha256_hex(token),
                "grant_id": secrets.token_urlsafe(16),
                "client_id": fx.client_pk,
                "session_id": person.sid,
                "account_id": person.account_id,
                "scope": REFRESH_SCOPE,
                "claims": None,
                "created_at": now,
                "expires_at": person.session_expires,
            }
        )
        bodies.append(urlencode({"grant_type": "refresh_token", "refresh_token": token}))
    with app.app_context():
        db = get_db()
        for start in range(0, len(rows), 5000):
            db.execute(insert(RefreshToken), rows[start : start + 5000])
        db.commit()
    return bodies


def stored_request(fx: Fixture) -> dict[str, Any]:
    """An authorization request as authorize._stored() keeps it while the person logs in."""
    verifier = secrets.token_urlsafe(48)
    return {
        "client_id": fx.client_id,
        "school_id": fx.school_pk,
        "redirect_uri": fx.redirect_uri,
        "started": int(time.time()),
        "params": {
            "state": secrets.token_urlsafe(8),
            "scope": CODE_SCOPE,
            "code_challenge": s256(verifier),
            "prompt": [],
            "max_age": None,
            "claims": None,
            "nonce": secrets.token_urlsafe(8),
            "login_hint": None,
            "id_token_hint": None,
            "ui_locales": None,
            "acr_values": None,
        },
    }


def logins_pool(app: Flask, fx: Fixture, issuer: str, n: int) -> list[str]:
    """Start n interactions, fetch each one's login page like a browser (Flask session cookie
    with the CSRF token), and return "cookie<TAB>credential form" lines with right passwords."""
    with app.app_context():
        ixs = [interactions.start(stored_request(fx)) for _ in range(n)]
    cookie_name = app.config["SESSION_COOKIE_NAME"]

    def fetch(i: int) -> str:
        ix = ixs[i]
        resp = requests.get(f"{issuer}/login", params={"ix": ix}, timeout=30)
        match = CSRF_RE.search(resp.text)
        cookie = resp.cookies.get(cookie_name)
        if resp.status_code != 200 or not match or not cookie:
            raise RuntimeError(f"login page for a seeded interaction: {resp.status_code}")
        person = fx.people[i % len(fx.people)]
        form = urlencode(
            {"csrf_token": match.group(1), "ix": ix, "email": person.email, "password": PASSWORD}
        )
        return f"{cookie_name}={cookie}\t{form}"

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(fetch, range(n)))
