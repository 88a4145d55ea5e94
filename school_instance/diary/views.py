"""E-diary pages by role (parent, teacher, admin)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template

bp = Blueprint("diary", __name__)


def dashboard() -> Any:
    """The signed-in person's start page."""
    return render_template("dashboard.html", roles=g.user["roles"])
