"""Levels of assurance (acr): what a request or a school asks for, and whether a session has it.

Levels are TARA's (eIDAS): low < substantial < high. Password and login link count as low; eID
as the upstream says. A request's `acr_values` (OIDC Core §3.1.2.1) lists acceptable levels;
any of them, or a higher one, satisfies it. A school may also require a minimum per role
(configuration IDP_MIN_ACR: {"school-slug": {"teacher": "substantial", "exempt": [subs]}}).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from idp.models import Account, School
from shared.db import get_db

ACR_LEVELS = ("low", "substantial", "high")


def acr_rank(acr: str | None) -> int:
    """Order of assurance levels (unknown ranks below low)."""
    return ACR_LEVELS.index(acr) if acr in ACR_LEVELS else -1


def satisfies(acr: str | None, required: str | None) -> bool:
    """Tell whether a session's level meets a required one (None requires nothing)."""
    return required is None or acr_rank(acr) >= acr_rank(required)


def requested(params: dict[str, Any]) -> str | None:
    """The lowest known level among the request's acr_values (unknown values are ignored)."""
    known = [v for v in (params.get("acr_values") or "").split() if v in ACR_LEVELS]
    return min(known, key=acr_rank) if known else None


def school_minimum(school_id: int, account_id: int) -> str | None:
    """The level a school requires of this account's roles (queried only when configured)."""
    rules: dict[str, Any] = current_app.config.get("MIN_ACR") or {}
    if not rules:
        return None
    row = (
        get_db()
        .execute(
            select(School.slug, Account.roles, Account.sub)
            .join(Account, Account.school_id == School.id)
            .where(School.id == school_id, Account.id == account_id)
        )
        .first()
    )
    if row is None or row.slug not in rules:
        return None
    rule = rules[row.slug]
    if row.sub in (rule.get("exempt") or []):
        return None  # e.g. a teacher from abroad without Estonian eID
    levels = [rule[role] for role in row.roles if rule.get(role) in ACR_LEVELS]
    return max(levels, key=acr_rank) if levels else None


def required(params: dict[str, Any], school_id: int, account_id: int | None) -> str | None:
    """The level this request needs: the higher of acr_values and the school's rule."""
    levels = [
        lvl
        for lvl in (
            requested(params),
            school_minimum(school_id, account_id) if account_id else None,
        )
        if lvl is not None
    ]
    return max(levels, key=acr_rank) if levels else None
