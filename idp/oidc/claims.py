"""Scopes and the claims they release (OIDC Core §5.4), from the person's data."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from idp.models import Account, Client, Person, School
from shared.messages import STUUDIUM_CLAIMS, STUUDIUM_SCOPE

SCOPES_SUPPORTED = [
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
    STUUDIUM_SCOPE,
]

SCOPE_CLAIMS: dict[str, list[str]] = {
    "profile": ["name", "given_name", "family_name", "birthdate", "locale", "updated_at"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number", "phone_number_verified"],
    "address": ["address"],
    STUUDIUM_SCOPE: list(STUUDIUM_CLAIMS),
}

CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "at_hash",
    *dict.fromkeys(c for cs in SCOPE_CLAIMS.values() for c in cs),
]


def normalise_scope(scope: str | None) -> str:
    """Return the supported scopes of a request, deduplicated, in a canonical order."""
    asked = set((scope or "").split())
    return " ".join(s for s in SCOPES_SUPPORTED if s in asked)


def parse_claims_request(raw: str | None) -> dict[str, Any] | None:
    """Parse the claims parameter (§5.5); None when absent, ValueError when malformed."""
    if raw is None:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict) or any(
        k in value and not isinstance(value[k], dict | None) for k in ("id_token", "userinfo")
    ):
        raise ValueError("claims must be a JSON object of objects")
    return value


@dataclass(frozen=True, slots=True)
class PersonRow:
    """The claim columns of a person, read without the ORM (the token endpoint)."""

    given_name: str
    family_name: str
    birth_date: dt.date | None
    locale: str
    updated_at: dt.datetime
    email: str | None
    email_verified: bool
    phone: str | None
    address: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class AccountRow:
    """The columns of an account the token endpoint uses; person is None when not loaded."""

    id: int
    person_id: int
    school_id: int
    sub: str
    roles: list[str]
    status: str
    person: PersonRow | None


def person_claims(person: Person | PersonRow, account: Account | AccountRow) -> dict[str, Any]:
    """Return every releasable claim of a person at one school."""
    return {
        "sub": account.sub,
        "name": f"{person.given_name} {person.family_name}".strip(),
        "given_name": person.given_name,
        "family_name": person.family_name,
        "birthdate": person.birth_date.isoformat() if person.birth_date else None,
        "locale": person.locale,
        "updated_at": int(person.updated_at.timestamp()),
        "email": person.email,
        "email_verified": bool(person.email_verified),
        "phone_number": person.phone,
        "phone_number_verified": False,
        "address": person.address,
    }


def person_changed_claims(person: Person, account: Account) -> dict[str, Any]:
    """The person's current data as a school keeps it (what a person-changed event carries)."""
    everything = person_claims(person, account)
    return {
        k: everything[k]
        for k in (
            "given_name",
            "family_name",
            "name",
            "birthdate",
            "email",
            "email_verified",
            "phone_number",
            "locale",
        )
    }


def released(
    person: Person | PersonRow,
    account: Account | AccountRow,
    scope: str,
    requested: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the claims a scope plus an explicit request release, omitting empty ones."""
    everything = person_claims(person, account)
    names = {"sub"}
    for s in scope.split():
        names.update(SCOPE_CLAIMS.get(s, []))
    names.update((requested or {}).keys())
    return {k: everything[k] for k in names if everything.get(k) is not None}


# The person's other schools with a jump target: a plain select built once, run on the
# connection (the token endpoint runs it for every login with the stuudium scope).
_SCHOOL = cast(Table, School.__table__)
_ACCOUNT = cast(Table, Account.__table__)
_CLIENT = cast(Table, Client.__table__)
_ORDER = (_SCHOOL.c.name, _CLIENT.c.id)


def _other_schools(person: ColumnElement[Any], school: ColumnElement[Any]) -> Select[Any]:
    """The other schools (with a jump target) of the person, beside the school given."""
    return (
        select(
            _SCHOOL.c.slug,
            _SCHOOL.c.name,
            _SCHOOL.c.base_url,
            _SCHOOL.c.logo.is_not(None),
            _CLIENT.c.initiate_login_uri,
        )
        .join(_ACCOUNT, _ACCOUNT.c.school_id == _SCHOOL.c.id)
        .join(
            _CLIENT,
            (_CLIENT.c.school_id == _SCHOOL.c.id) & _CLIENT.c.initiate_login_uri.is_not(None),
        )
        .where(
            _ACCOUNT.c.person_id == person,
            _ACCOUNT.c.status == "active",
            _ACCOUNT.c.school_id != school,
            _SCHOOL.c.status == "active",
        )
    )


_OTHER_SCHOOLS = _other_schools(bindparam("person_id"), bindparam("school_id")).order_by(*_ORDER)


def other_schools_json_sql(person: str, school: str) -> str:
    """The same rows as one JSON array, as PostgreSQL SQL over the SQL expressions of the
    person and the school, for a statement that reads them along with other things (the code
    exchange's)."""
    rows = _other_schools(literal_column(person), literal_column(school))
    array = func.coalesce(
        func.json_agg(aggregate_order_by(func.json_build_array(*rows.selected_columns), *_ORDER)),
        literal_column("'[]'"),
    )
    return str(
        rows.with_only_columns(array).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )


def stuudium_claims(
    db: Callable[[], Session],
    account: Account | AccountRow,
    issuer: str,
    rows: Iterable[Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """Our own scope: this account's roles, the person's other schools (display data only);
    rows: the schools when already read (other_schools_json_sql), else they are read here (on
    the session db gives)."""
    if rows is None:
        rows = (
            db()
            .connection()
            .execute(
                _OTHER_SCHOOLS, {"person_id": account.person_id, "school_id": account.school_id}
            )
        )
    schools: dict[str, dict[str, Any]] = {}
    for slug, name, url, has_logo, login_url in rows:
        schools.setdefault(
            slug,
            {
                "name": name,
                "url": url,
                "login_url": login_url,
                "logo": f"{issuer}/schools/{slug}/logo" if has_logo else None,
            },
        )
    assert account.person is not None
    return {
        "roles": list(account.roles),
        "schools": list(schools.values()),
        "locale": account.person.locale,
    }
