"""Helpers of the data-sync tests: the tenant admin API with a school's client credentials,
the schools' local copies of people, and security events minted by the IdP's own keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from sqlalchemy import select

from tests.flows.test_diary import _diary, _member
from tests.support import PersonLogin, SchoolClient, Tenant

API = "/api/admin/v1"


def client_token(idp: str, school: SchoolClient) -> str:
    """The school client's access token for the admin API (client credentials grant)."""
    resp = requests.post(
        f"{idp}/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        auth=(school.client_id, school.client_secret or ""),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def api(
    idp: str,
    token: str,
    method: str,
    path: str,
    acting: str | None = None,
    body: dict[str, Any] | None = None,
    if_match: int | str | None = None,
) -> requests.Response:
    """One admin API call, acting as the account acting (Stuudium-Acting-Sub) when given."""
    headers = {"Authorization": f"Bearer {token}"}
    if acting is not None:
        headers["Stuudium-Acting-Sub"] = acting
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
    return requests.request(method, f"{idp}{API}{path}", json=body, headers=headers, timeout=10)


def add_member(
    school_app: Any, school: Tenant, person: PersonLogin, roles: list[str], sub: str | None = None
) -> int:
    """The school's local copy of an account (as the roster import or a first login makes)."""
    with _diary(school_app, school) as (db, tenant_id):
        return _member(db, tenant_id, person, roles, sub)


def copy_of(school_app: Any, school: Tenant, sub: str) -> dict[str, Any]:
    """The school's local copy of an account's person."""
    from school_instance.models import Member

    with _diary(school_app, school) as (db, tenant_id):
        row = db.scalar(select(Member).where(Member.tenant_id == tenant_id, Member.sub == sub))
        assert row is not None
        return {
            "given_name": row.given_name,
            "family_name": row.family_name,
            "email": row.email,
            "phone": row.phone,
            "version": row.version,
            "birth_date": row.birth_date,
        }


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether check becomes true within seconds (deliveries run in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def person_id(idp_app: Any, sub: str) -> int:
    """The IdP person behind an account."""
    from idp.models import Account
    from shared.db import get_db

    with idp_app.app_context():
        account = get_db().scalar(select(Account).where(Account.sub == sub))
        assert account is not None
        return int(account.person_id)
