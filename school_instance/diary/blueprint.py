"""The e-diary's blueprint and the template helpers its pages share."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, g
from flask_babel import gettext as _

bp = Blueprint("diary", __name__)

MARKS = ("present", "absent", "late")
TALLINN = ZoneInfo("Europe/Tallinn")


@bp.app_template_filter("kp")
def date_et(value: dt.date | None) -> str:
    """A date (or a moment, in Estonian time) as Estonians write it: 05.03.2026."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(TALLINN)
    return value.strftime("%d.%m.%Y") if value else ""


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
