"""The navigation bar of every page: the person's schools with their logos (this one marked, the
others a jump away), the account menu, and the admin's count of pending applications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, g

from school_instance import admin_api, sessions
from school_instance.tenancy import current

# How many schools (this one included) the bar lists side by side before they collapse into
# the "Minu koolid" menu: on a phone, and on a wider screen.
FIT_PHONE = 3
FIT_WIDE = 6


@dataclass(frozen=True)
class BarSchool:
    """One school as the bar shows it."""

    name: str
    shared: str  # the leading word every listed school shares ("Laagri "), hidden on phones
    short: str  # the rest of the name, always shown
    href: str
    logo: str | None
    current: bool

    @property
    def initial(self) -> str:
        """The letter shown when the school has no logo."""
        return (self.short or self.name or "?")[:1].upper()


def split_names(names: list[str]) -> list[tuple[str, str]]:
    """Each name as (shared first word with its space, the rest): when every listed school's
    name starts with the same word and has more, that word is the shared part."""
    words = [name.split(" ", 1) for name in names]
    firsts = {w[0].casefold() for w in words}
    if len(names) > 1 and len(firsts) == 1 and all(len(w) == 2 and w[1] for w in words):
        return [(w[0] + " ", w[1]) for w in words]
    return [("", name) for name in names]


def jump_url(school: dict[str, Any]) -> str:
    """The link to another school: its login initiation URI with our issuer (OIDC Core §4)."""
    target = school.get("url") or ""
    login_url = school.get("login_url") or f"{target}/auth/login"
    return f"{login_url}?{urlencode({'iss': current().issuer, 'target_link_uri': target + '/'})}"


def schools() -> list[BarSchool]:
    """This school first, then the person's other schools (from the ID token's claims)."""
    tenant = current()
    user = g.get("user") or {}
    others = [s for s in user.get("schools") or [] if isinstance(s, dict)]
    names = [tenant.name, *(str(s.get("name") or "") for s in others)]
    parts = split_names(names)
    here = BarSchool(tenant.name, *parts[0], "/", tenant.logo_url, True)
    return [here] + [
        BarSchool(str(s.get("name") or ""), *part, jump_url(s), s.get("logo"), False)
        for s, part in zip(others, parts[1:], strict=True)
    ]


def pending_applications() -> int | None:
    """The admin's count of pending applications: read from the IdP at most once a minute per
    school; None when it is not known (the IdP did not answer)."""
    tenant, user = current(), g.get("user")
    if not user or "admin" not in user.get("roles", []):
        return None
    count = sessions.pending_applications(tenant)
    if count is None:
        try:
            count = len(admin_api.applications(tenant, user["access_token"]))
        except admin_api.AdminApiError:
            count = -1
        sessions.remember_pending_applications(tenant, count)
    return count if count >= 0 else None


def init_app(app: Flask) -> None:
    """Make the bar's helpers available to every template."""
    app.jinja_env.globals.update(
        bar_schools=schools,
        pending_applications=pending_applications,
        jump_url=jump_url,
        FIT_PHONE=FIT_PHONE,
        FIT_WIDE=FIT_WIDE,
    )
