"""The school's news and events: teachers, staff and admins post them to the whole school or
to one class (its teacher, pupils and guardians see it; staff and admins see all); the author
edits and deletes their own."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from school_instance.diary import queries
from school_instance.diary.blueprint import bp, has_role
from school_instance.diary.forms import Form
from school_instance.models import Announcement, SchoolClass
from school_instance.sso import login_required, page, role_required
from school_instance.tenancy import current, get_scoped
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


def audiences() -> list[SchoolClass]:
    """The classes the signed-in person may post to (an admin or staff: every class)."""
    if has_role("admin", "staff"):
        return queries.all_classes()
    return queries.classes_taught(queries.my_id())


def _form_page(form: Form, status: int = 200, item: Announcement | None = None) -> Any:
    return render_template("diary/news_new.html", form=form, classes=audiences(), item=item), status


def _read(form: Form) -> dict[str, Any] | None:
    """The announcement's fields from the form, or None when the form has errors."""
    title = form.text("title", _("Kirjuta pealkiri."), 200)
    body = form.text("body", _("Kirjuta teate tekst."), 5000)
    event_on = form.date("event_on", required=False)
    class_id = None
    if form.get("audience", "school") != "school":
        class_id = form.choice(
            "audience", {c.id: c for c in audiences()}, _("Vali, kellele teade on.")
        )
    if not form.ok:
        return None
    kind = "event" if event_on else "news"
    return {"title": title, "body": body, "event_on": event_on, "kind": kind, "class_id": class_id}


@bp.route("/news/new", methods=["GET", "POST"])
@role_required(*AUTHORS)
def new_announcement() -> Any:
    """Post news, or an event when a date is given, to the school or one class."""
    if request.method == "GET":
        return _form_page(Form({"audience": "school"}))
    check_csrf()
    form = Form(request.form)
    fields = _read(form)
    if fields is None:
        return _form_page(form, 400)
    get_db().add(Announcement(tenant_id=current().id, author_id=queries.my_id(), **fields))
    flash(_("Sündmus on avaldatud.") if fields["event_on"] else _("Uudis on avaldatud."))
    return redirect(url_for("diary.news"), 303)


def _own(announcement_id: int) -> Announcement | Response:
    """The signed-in person's own announcement, or the page saying only its author edits it."""
    item = get_scoped(Announcement, announcement_id)
    if item.author_id != queries.my_id():
        return page(
            _("Seda teadet saab muuta ainult selle autor"),
            _("Kui teates on viga, kirjuta selle autorile või kooli administraatorile."),
            403,
            (_("Uudiste juurde"), url_for("diary.news")),
        )
    return item


@bp.route("/news/<int:announcement_id>/edit", methods=["GET", "POST"])
@role_required(*AUTHORS)
def edit_announcement(announcement_id: int) -> Any:
    """Change one's own announcement (its title, text, date and audience)."""
    item = _own(announcement_id)
    if isinstance(item, Response):
        return item
    if request.method == "GET":
        values = {
            "title": item.title,
            "body": item.body,
            "event_on": item.event_on.isoformat() if item.event_on else "",
            "audience": str(item.class_id) if item.class_id else "school",
        }
        return _form_page(Form(values), item=item)
    check_csrf()
    form = Form(request.form)
    fields = _read(form)
    if fields is None:
        return _form_page(form, 400, item)
    for name, value in fields.items():
        setattr(item, name, value)
    flash(_("Muudatused on salvestatud."))
    return redirect(url_for("diary.news"), 303)


@bp.post("/news/<int:announcement_id>/delete")
@role_required(*AUTHORS)
def delete_announcement(announcement_id: int) -> Any:
    """Delete one's own announcement, after a question."""
    check_csrf()
    item = _own(announcement_id)
    if isinstance(item, Response):
        return item
    if request.form.get("confirm") != "1":
        return render_template("diary/news_delete.html", item=item)
    get_db().delete(item)
    flash(_("Teade „%(title)s” on kustutatud.", title=item.title))
    return redirect(url_for("diary.news"), 303)
