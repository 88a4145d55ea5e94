"""The school's news and events: everyone reads them, teachers and staff post them."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from school_instance.diary import queries
from school_instance.diary.blueprint import bp
from school_instance.diary.forms import Form
from school_instance.models import Announcement
from school_instance.sso import login_required, role_required
from school_instance.tenancy import current
from shared.db import get_db
from shared.security import check_csrf

AUTHORS = ("teacher", "admin", "staff")


@bp.get("/news")
@login_required
def news() -> Any:
    """Every announcement of the school, the newest first, and the coming events."""
    items = queries.latest_news(50)
    authors = queries.members_by_id(a.author_id for a in items)
    return render_template(
        "diary/news.html", items=items, authors=authors, events=queries.upcoming_events(20)
    )


def _form_page(form: Form, status: int = 200) -> Any:
    return render_template("diary/news_new.html", form=form), status


@bp.route("/news/new", methods=["GET", "POST"])
@role_required(*AUTHORS)
def new_announcement() -> Any:
    """Post news, or an event when a date is given."""
    if request.method == "GET":
        return _form_page(Form())
    check_csrf()
    form = Form(request.form)
    title = form.text("title", _("Kirjuta pealkiri."), 200)
    body = form.text("body", _("Kirjuta teate tekst."), 5000)
    event_on = form.date("event_on", required=False)
    if not form.ok:
        return _form_page(form, 400)
    get_db().add(
        Announcement(
            tenant_id=current().id,
            author_id=queries.my_id(),
            kind="event" if event_on else "news",
            title=title,
            body=body,
            event_on=event_on,
        )
    )
    flash(_("Sündmus on avaldatud.") if event_on else _("Uudis on avaldatud."))
    return redirect(url_for("diary.news"), 303)
