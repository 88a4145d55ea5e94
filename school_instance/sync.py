"""The school's copies of people, kept in sync with Stuudium ID: person-changed Security Event
Tokens pushed by the IdP (RFC 8417, delivered per RFC 8935) and the current state fetched on
demand through the tenant admin API; a copy takes only data of a newer version (order-safe)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, cast

from flask import current_app, request
from sqlalchemy import Table, bindparam, update
from werkzeug.wrappers import Response

from school_instance import sessions
from school_instance.models import Member
from school_instance.provider import IdTokenInvalid
from school_instance.sso import bp, claim_jti, idp_token_claims
from school_instance.tenancy import TenantInfo, current
from shared import i18n
from shared.db import get_db
from shared.messages import PERSON_CHANGED_EVENT, SET_MEDIA_TYPE, SET_TYP

PERSON_CHANGED = PERSON_CHANGED_EVENT
SET_MAX_AGE_SECONDS = 300
# RFC 8935 §2.3's error codes for what went wrong with a token.
_ERR = {"signature": "invalid_key", "iss/aud": "invalid_audience"}

_MEMBER = cast(Table, Member.__table__)
# Only a newer version replaces the copy: a duplicate or an older event matches nothing.
_APPLY = update(_MEMBER).where(
    _MEMBER.c.tenant_id == bindparam("t_id"),
    _MEMBER.c.sub == bindparam("t_sub"),
    _MEMBER.c.version < bindparam("newer"),
)


def _birth_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value))


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """The columns of a member row from a person's claims; ValueError when they make no sense."""
    given, family = data.get("given_name"), data.get("family_name")
    if not isinstance(given, str) or not isinstance(family, str) or not (given or family):
        raise ValueError("names")
    email, phone = data.get("email"), data.get("phone_number")
    if not isinstance(email, str | None) or not isinstance(phone, str | None):
        raise ValueError("email/phone")
    return {
        "given_name": given[:200],
        "family_name": family[:200],
        "email": email[:320] if email else None,
        "phone": phone[:40] if phone else None,
        "birth_date": _birth_date(data.get("birthdate")),
    }


def apply(tenant_id: int, sub: str, version: int, data: dict[str, Any]) -> bool:
    """Update the school's copy of an account's person if version is newer than the copy's,
    committed (a commit point: the local sessions' language follows it); tell whether it
    changed (an unknown sub changes nothing: the school does not know them)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version")
    done = get_db().execute(
        _APPLY,
        {"t_id": tenant_id, "t_sub": sub, "newer": version, "version": version, **_copy(data)},
    )
    get_db().commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _person_changed(tenant: TenantInfo, token: str) -> tuple[str, int, dict[str, Any]]:
    """Validate a person-changed SET; return (sub, version, the person's claims)."""
    claims = idp_token_claims(tenant, token, SET_TYP)
    if claims["iat"] < time.time() - SET_MAX_AGE_SECONDS:
        raise IdTokenInvalid("too old")
    subject = claims.get("sub_id") or {}
    sub = subject.get("sub") if isinstance(subject, dict) else None
    if not isinstance(sub, str) or not sub or subject.get("iss") != tenant.issuer:
        raise IdTokenInvalid("sub_id")
    event = (claims.get("events") or {}).get(PERSON_CHANGED)
    if not isinstance(event, dict) or not isinstance(event.get("claims"), dict):
        raise IdTokenInvalid("events")
    claim_jti(tenant, claims)
    return sub, event.get("version"), event["claims"]  # type: ignore[return-value]


def _set_error(err: str, description: str) -> Response:
    return Response(
        json.dumps({"err": err, "description": description}), 400, mimetype="application/json"
    )


@bp.post("/events")
def events() -> Response:
    """RFC 8935 push: 202 once the event is taken (applied, or older than the copy); 400 for an
    invalid token; 503 when it failed here, so that the IdP tries again."""
    tenant = current()
    if request.mimetype != SET_MEDIA_TYPE:
        return _set_error("invalid_request", "Content-Type must be application/secevent+jwt.")
    if (request.content_length or 0) > 8192:
        return _set_error("invalid_request", "The token is too large.")
    try:
        sub, version, data = _person_changed(tenant, request.get_data(as_text=True))
        newer = apply(tenant.id, sub, version, data)
        locale = i18n.supported(data.get("locale"))
        if newer and locale:
            sessions.set_locale_by_sub(tenant, sub, locale)
    except IdTokenInvalid as exc:
        return _set_error(_ERR.get(str(exc), "invalid_request"), f"The token is invalid: {exc}.")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return _set_error("invalid_request", f"The event is malformed: {type(exc).__name__}.")
    except Exception:  # an internal failure answers 503 so that the IdP retries
        current_app.logger.exception("security event failed")
        return Response("", 503)
    return Response("", 202)
