"""The stuudium scope's claims (the school's navigation bar: the person's other schools), the
same at sign-in and at every refresh, and gone when a refresh narrows the scope without it."""

from __future__ import annotations

import secrets
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import refresh, sign_in, token_request

SCOPE = "openid profile offline_access stuudium"


def _claims(idp: str, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks", timeout=10).json())
    return dict(jwt.decode(id_token, keys, algorithms=["ES256", "RS256"]).claims)


def _also_at(idp_app: Any, sub: str, slug: str, status: str = "active") -> None:
    """Give the person behind sub an account at another school."""
    from sqlalchemy import select

    from idp.models import Account
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        first = db.scalar(select(Account).where(Account.sub == sub))
        assert first is not None
        db.add(
            Account(
                person_id=first.person_id,
                school_id=school_by_slug(db, slug).id,
                sub=secrets.token_urlsafe(24),
                roles=["parent"],
                status=status,
                login_email=first.login_email,
            )
        )
        db.commit()


def test_other_schools_at_sign_in_and_at_every_refresh(
    idp, idp_app, make_school, make_person, browser
):
    here, linked, closed = make_school(), make_school(), make_school()
    person = make_person(here)
    _also_at(idp_app, person.sub, linked.slug)
    _also_at(idp_app, person.sub, closed.slug, status="disabled")
    base = f"http://127.0.0.1:9/{linked.slug}"
    expected = [{"name": linked.name, "url": base, "login_url": f"{base}/auth/login", "logo": None}]

    tokens = sign_in(idp, browser, here, person, scope=SCOPE)
    first = _claims(idp, tokens["id_token"])
    assert first["schools"] == expected and first["roles"] == ["parent"]

    again = refresh(idp, here, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert _claims(idp, again.json()["id_token"])["schools"] == expected

    narrowed = token_request(
        idp,
        here,
        {
            "grant_type": "refresh_token",
            "scope": "openid profile",
            "refresh_token": again.json()["refresh_token"],
        },
    )
    assert narrowed.status_code == 200, narrowed.text
    assert "schools" not in _claims(idp, narrowed.json()["id_token"])


def test_without_the_scope_no_schools_are_released(idp, idp_app, make_school, make_person, browser):
    here, linked = make_school(), make_school()
    person = make_person(here)
    _also_at(idp_app, person.sub, linked.slug)
    tokens = sign_in(idp, browser, here, person)
    assert "schools" not in _claims(idp, tokens["id_token"])
    again = refresh(idp, here, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert "schools" not in _claims(idp, again.json()["id_token"])
