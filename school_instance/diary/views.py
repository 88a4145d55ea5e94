"""E-diary pages by role (parent, teacher, admin); the start page gathers them."""

from __future__ import annotations

from typing import Any

from flask import render_template

from school_instance.diary import (
    accounts,
    admin,
    applications,
    corrections,
    enrolment,
    news,
    parent,
    queries,
    teacher,
)
from school_instance.diary.blueprint import bp, has_role
from shared.db import get_reader

__all__ = ["bp", "dashboard"]
_ROUTES = (
    accounts,
    admin,
    applications,
    corrections,
    enrolment,
    news,
    teacher,
)  # imported for their routes


def dashboard() -> Any:
    """The signed-in person's start page: a section per role, and the school's news."""
    get_reader()  # reads only: no BEGIN/COMMIT round trips
    me = queries.my_id()
    children = parent.my_children(limit=5)
    taught = queries.classes_taught(me) if has_role("teacher") else []
    news, events = queries.news_and_events(5)
    return render_template(
        "dashboard.html",
        children=children,
        show_parent=has_role("parent") or bool(children),
        taught=taught,
        recent=teacher.recent_lessons(taught),
        news=news,
        events=events,
    )
