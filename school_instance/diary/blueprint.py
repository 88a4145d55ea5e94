"""The e-diary's blueprint and the template helpers its pages share."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, g
from flask_babel import gettext as _

from shared import i18n

bp = Blueprint("diary", __name__)

MARKS = ("present", "absent", "late")
TALLINN = ZoneInfo("Europe/Tallinn")


@bp.app_template_filter("kp")
def date_et(value: dt.date | None) -> str:
    """A date (a moment in Tallinn time) as the page's language writes it: 05.03.2026."""
    return i18n.date_text(value)


@bp.app_template_global()
def mark_label(status: str | None) -> str:
    """The attendance mark in words."""
    labels = {"present": _("kohal"), "absent": _("puudus"), "late": _("hilines")}
    return labels.get(status or "", _("märkimata"))


@bp.app_template_global()
def has_role(*roles: str) -> bool:
    """Whether the signed-in person has one of these roles at this school."""
    user = g.get("user")
    return bool(user) and bool(set(roles) & set(user["roles"]))
