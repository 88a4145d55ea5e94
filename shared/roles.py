"""The roles a person may have in a school, as people say them."""

from __future__ import annotations

from flask_babel import gettext as _


def role_names() -> dict[str, str]:
    """The roles as the school says them."""
    return {
        "parent": _("lapsevanem"),
        "teacher": _("õpetaja"),
        "student": _("õpilane"),
        "admin": _("administraator"),
        "staff": _("töötaja"),
    }


def role_name(role: str) -> str:
    """One role as the school says it (a template filter of both apps)."""
    return role_names().get(role, role)
