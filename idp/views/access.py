"""Saada mulle ligipääsuandmed: an e-mail → a one-time login link (if the school knows the
address); the link signs the person in at that school and goes on to it."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from idp.models import Account, School
from idp.outbox.queue import queue_mail
from idp.people import one_time_links as links
from idp.sso.sessions import SessionRefused
from idp.sso.signin import LINK_AMR, school_login_uri, start_session
from idp.store import counters, limits
from idp.views.login import set_sso_cookie
from shared import i18n
from shared.db import get_db
from shared.mail import is_address
from shared.security import check_csrf

bp = Blueprint("access", __name__)


def school_or_404(slug: str) -> School:
    """The active school of a public page."""
    school = get_db().scalar(
        select(School).where(School.slug == slug[:64], School.status == "active")
    )
    if school is None:
        abort(404)
    return school


def link_page(
    school: School | None, heading: str, message: str, button: str, action: str
) -> Response:
    """The page a mailed link opens: nothing happens until its button is pressed (mail scanners
    open links too)."""
    resp = make_response(
        render_template(
            "link_open.html",
            school=school,
            heading=heading,
            message=message,
            button=button,
            action=action,
        )
    )
    return private(resp)


def private(resp: Response) -> Response:
    """A link's pages: never cached, never named in a Referer."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def invalid_link(school: School | None, again_url: str, again_label: str) -> Response:
    """A used, voided, expired, stale (its account's login e-mail or state changed), foreign or
    unknown link: what happened and the way to a new one."""
    return private(
        make_response(
            render_template(
                "link_invalid.html", school=school, again_url=again_url, again_label=again_label
            ),
            410,
        )
    )


def take_link(
    counter: str, purposes: tuple[str, ...], school_id: int | None = None
) -> links.Consumed | None:
    """Use the posted link once. Each use is counted per address (and school slug: counter) before
    the link is looked at, and refunded when it works: past the cap every link looks invalid.
    None when it does not work, including a link no longer valid for its subject (links.consume
    checks that in the same statement); nothing is left changed."""
    cfg = current_app.config
    counted = counters.link_uses(counter, request.remote_addr or "-")
    if counters.over_limit(
        counted,
        [cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]],
        cfg["LOGIN_FAILURE_WINDOW_SECONDS"],
        "link",
    ):
        return None
    db = get_db()
    used = links.consume(db, request.form.get("token", ""), purposes, school_id=school_id)
    if used is None:
        db.rollback()
        return None
    counters.refund(counted)
    return used


def too_many_mails(kind: str, school: str, email: str) -> bool:
    """Count a request for a mail, per address typed and per client address at this school:
    past either cap nothing more is mailed (the answer stays the same)."""
    cfg = current_app.config
    return counters.over_limit(
        counters.mail_requests(kind, school, email, request.remote_addr or "-"),
        [cfg["LINK_MAX_REQUESTS"], cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]],
        cfg["LOGIN_FAILURE_WINDOW_SECONDS"],
        kind,
    )


@bp.route("/s/<slug>/access", methods=["GET", "POST"])
@limits.forms()
def request_link(slug: str) -> Any:
    """The form, and on POST the same answer whether or not the address has an account: the
    request is queued either way and resolved by the mail sender."""
    school = school_or_404(slug)
    minutes = current_app.config["LINK_SECONDS"]["access"] // 60
    if request.method == "GET":
        return render_template("access_request.html", school=school, sent=False, error=None)
    check_csrf()
    email = request.form.get("email", "").strip()[:320]
    if not is_address(email):
        return render_template(
            "access_request.html",
            school=school,
            sent=False,
            error=_("Kirjuta oma e-posti aadress, näiteks mari@example.ee."),
        ), 400
    if not too_many_mails("access", school.slug, email):
        db = get_db()
        # The page's language; an account's own language replaces it at sending time.
        queue_mail(db, email, "access", school_id=school.id, kind="access", locale=i18n.current())
    return render_template("access_request.html", school=school, sent=True, minutes=minutes)


@bp.get("/s/<slug>/signin")
def signin_page(slug: str) -> Response:
    """A login link's page: a button that signs in (a GET never uses the link)."""
    school = school_or_404(slug)
    return link_page(
        school,
        _("Sisselogimine kooli %(school)s Stuudiumisse", school=school.name),
        _("Vajuta nuppu, et sisse logida. Link töötab ühe korra."),
        _("Logi sisse"),
        request.path,
    )


@bp.post("/s/<slug>/signin")
@limits.forms()
def signin(slug: str) -> Response:
    """Use the login link: start the session at this school and continue to the school (by
    the offer to set a password, when the person has none)."""
    check_csrf()
    school = school_or_404(slug)
    again = (url_for("access.request_link", slug=school.slug), _("Saada mulle uus link"))
    db = get_db()
    used = take_link(school.slug, links.LOGIN, school.id)
    account = db.get(Account, used.subject_id("account")) if used else None
    if account is None or account.status != "active" or account.school_id != school.id:
        db.rollback()
        return invalid_link(school, *again)
    try:  # the link's use commits with the session (sessions.create)
        secret, _live = start_session(db, account.person_id, account.id, LINK_AMR, "low")
    except SessionRefused:  # the account was disabled or moved just now
        db.rollback()
        return invalid_link(school, *again)
    if account.person.password_hash is None:
        # Signed in by a link with no password yet: offer to set one (skippable), then the school.
        resp = redirect(url_for("password.change", school=school.slug), 303)
    else:
        resp = redirect(school_login_uri(db, school), 303)
    set_sso_cookie(resp, secret)
    return private(resp)
