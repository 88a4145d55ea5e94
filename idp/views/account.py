"""The person's own Stuudium ID pages: the overview, the sessions page, ending sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    g,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.models import SsoSession
from idp.people.linking import linked_accounts
from idp.sso.logout import Scope, end_sessions
from idp.sso.session_list import live_sessions
from idp.views import home
from idp.views.errors import error_page
from idp.views.home import active_schools
from idp.views.logout_page import logged_out_page
from idp.views.onward import onward, session_school
from shared import i18n
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("account", __name__)
bp.add_url_rule("/", "home", home.home)  # the Stuudium ID home (views/home.py)


@bp.app_template_filter("tallinn_time")
def tallinn_time(moment: dt.datetime) -> str:
    """A moment in Tallinn's time as the page's language writes it: 29.11.2026 14:05."""
    return i18n.moment_text(moment)


def signed_in(view: Callable[..., Any]) -> Callable[..., Response]:
    """Run the view only for a browser with a live SSO session (g.live_session, g.person);
    otherwise say how to sign in. Personal pages are never cached."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        db = get_db()
        signed_in = home.signed_in_person(db)
        if signed_in is None:
            resp = make_response(render_template("not_signed_in.html", schools=active_schools(db)))
        else:
            g.live_session, g.person = signed_in
            resp = make_response(view(*args, **kwargs))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return wrapped


@bp.get("/account")
@signed_in
def overview() -> Any:
    """Sinu Stuudium ID: who is signed in, and the ways to their sessions and password."""
    return render_template(
        "account.html", person=g.person, linked=linked_accounts(get_db(), g.person.id)
    )


@bp.get("/account/sessions")
@signed_in
def sessions_page() -> Any:
    """Every live session of the person, with its device, times and schools."""
    return render_template(
        "account_sessions.html",
        person=g.person,
        sessions=live_sessions(get_db(), g.person.id, g.live_session.sid),
    )


@bp.post("/account/sessions/end")
@signed_in
def end_one() -> Any:
    """End one of the person's sessions; the schools signed in under it are told."""
    check_csrf()
    sid = request.form.get("sid", "")[:64]
    db = get_db()
    own = db.scalar(
        select(SsoSession.id).where(
            SsoSession.id == sid, SsoSession.person_id == g.person.id, SsoSession.ended_at.is_(None)
        )
    )
    if own is None:
        # Someone else's session, or one already ended: the same answer, nothing ended.
        return error_page(
            _("Seanssi ei leitud"),
            _(
                "Sellist seanssi sinu seansside hulgas ei ole – võib-olla on see juba lõppenud. "
                "Ava seansside leht uuesti."
            ),
            404,
        )
    ended = end_sessions(db, Scope(session_ids=(own,)), "logout")
    if own == g.live_session.sid:
        return logged_out_page(ended)
    return logged_out_page(
        ended,
        clear_cookie=False,
        way=onward(sid=g.live_session.sid),
        heading=_("Seanss on lõpetatud"),
        message=_(
            "Valitud seadme Stuudium ID seanss on lõppenud ja koolidele, "
            "kuhu sealt sisse logiti, on sellest teada antud."
        ),
        back_to=url_for("account.sessions_page"),
    )


@bp.post("/account/sessions/end-all")
@signed_in
def end_all() -> Any:
    """Logi välja kõikjal: asked first (the question lists what ends), then, confirmed, end
    every session of the person, this one included."""
    check_csrf()
    if request.form.get("confirm") != "yes":
        return render_template(
            "end_all_confirm.html",
            sessions=live_sessions(get_db(), g.person.id, g.live_session.sid),
        )
    db = get_db()
    # The way onward is the school this browser came from (read before its session ends).
    way = onward(session_school(db, g.live_session.sid), signed_in=False)
    ended = end_sessions(db, Scope(person_id=g.person.id), "logout_everywhere")
    return logged_out_page(
        ended,
        way=way,
        heading=_("Oled kõikjal välja logitud"),
        message=_(
            "Kõik sinu Stuudium ID seansid on lõppenud, kõigis seadmetes ja kõigis koolides. "
            "Kui kasutad ühist arvutit, sulge ka brauser."
        ),
    )
