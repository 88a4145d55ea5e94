"""Seo oma konto teise kooliga: choose the school, prove the other account, compare, confirm;
and Eemalda seos on the account page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, make_response, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.eid.binding import find_account
from idp.eid.client import EidIdentity
from idp.models import Person, School
from idp.people import linking
from idp.people.linking import LinkRefused
from idp.people.proofing import ProofingError
from idp.sso import sessions
from idp.sso.signin import school_login_uri
from idp.store import batch, limits
from idp.views.account import signed_in
from idp.views.errors import error_page
from idp.views.login import password_login, set_sso_cookie, wrong_password
from idp.views.logout_page import logged_out_page
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("link", __name__)


def _field_names() -> dict[str, str]:
    return {
        "isikukood": _("isikukood"),
        "given_name": _("eesnimi"),
        "family_name": _("perekonnanimi"),
        "birth_date": _("sünniaeg"),
        "email": _("e-posti aadress"),
        "phone": _("telefon"),
    }


def refusal_page(exc: LinkRefused) -> Any:
    """Say why the link did not happen and what to do next; nothing was merged."""
    again = _(
        "Nende kontode sidumiseks alusta uuesti oma kooli Stuudiumi profiililehelt "
        "(„Seo oma konto teise kooliga“)."
    )
    pages: dict[type[LinkRefused], tuple[str, str]] = {
        linking.UnknownAttempt: (
            _("Sidumist ei leitud"),
            _("Seda sidumist ei ole olemas.") + " " + again,
        ),
        linking.AttemptExpired: (
            _("Sidumise aeg sai läbi"),
            _("Sidumine tuleb lõpetada 10 minuti jooksul ja see aeg sai läbi. Midagi ei seotud.")
            + " "
            + again,
        ),
        linking.AttemptUsed: (
            _("Sidumine on juba kasutatud"),
            _("Seda sidumist on juba kasutatud ja seda ei saa korrata.") + " " + again,
        ),
        linking.OtherSession: (
            _("Sidumine alustati teises seansis"),
            _(
                "Sidumise saab lõpetada ainult samas brauseris ja samas sisselogimises, kus see "
                "alustati. Midagi ei seotud."
            )
            + " "
            + again,
        ),
        linking.WrongSchool: (
            _("Sisselogimine teise kooli"),
            _(
                "Sidumine alustati teise kooliga. Siduda saab ainult selle kooli kontoga, mille "
                "sidumise alguses valisid. Midagi ei seotud."
            )
            + " "
            + again,
        ),
        linking.NotProven: (
            _("Logi enne teise kontoga sisse"),
            _(
                "Konto sidumiseks pead kõigepealt sisse logima selle kontoga, mida soovid siduda. "
                "Midagi ei seotud."
            )
            + " "
            + again,
        ),
        linking.AlreadyLinked: (
            _("Kontod on juba seotud"),
            _("See konto on juba sinu kontoga seotud. Sinu koolid on näha sinu Stuudium ID lehel."),
        ),
        linking.TargetGone: (
            _("Kontot ei saa siduda"),
            _(
                "Seda kontot ei saa praegu siduda, sest see on suletud. Pöördu kooli "
                "administraatori poole."
            ),
        ),
        linking.AccountsChanged: (
            _("Kontod muutusid sidumise ajal"),
            _(
                "Samal ajal seoti üks neist kontodest teise kontoga, nii et midagi ei seotud. Ava "
                "oma Stuudium ID leht, et näha oma praeguseid koole."
            ),
        ),
        linking.DataMismatch: (
            _("Andmed ei klapi"),
            _("Kontode isikuandmed ei ole samad, nii et kontosid ei seotud."),
        ),
        linking.TwoAccounts: (
            _("Kontosid ei saa siduda"),
            _(
                "Pärast sidumist oleks sul ühes koolis kaks kontot (%(schools)s). Üks inimene saab "
                "igas koolis olla ainult ühe kontoga – pöördu selle kooli administraatori poole.",
                schools=", ".join(exc.schools),
            ),
        ),
        linking.EmailTaken: (
            _("E-posti aadress on juba kasutusel"),
            _(
                "Valitud e-posti aadressiga logib koolis %(schools)s sisse keegi teine. Vali teine "
                "aadress või pöördu kooli administraatori poole.",
                schools=", ".join(exc.schools),
            ),
        ),
        linking.EidNoAccount: (
            _("Selles koolis ei ole sinu isikukoodiga kontot"),
            _(
                "eID järgi ei leidnud me valitud koolist kontot, mille isikukood on sinu oma. "
                "Logi sisse selle konto e-posti ja parooliga või pöördu kooli administraatori "
                "poole. Midagi ei seotud."
            )
            + " "
            + again,
        ),
        linking.EidAmbiguous: (
            _("Kooli andmed ei klapi"),
            _(
                "Koolis %(schools)s on sinu isikukoodiga rohkem kui üks konto, seega me ei tea, "
                "millist siduda. Pöördu kooli administraatori poole. Midagi ei seotud.",
                schools=", ".join(exc.schools),
            ),
        ),
        linking.EidNames: (
            _("Kooli andmed ei klapi"),
            _(
                "Koolis %(schools)s on sinu isikukoodi juures teise inimese nimi, seega kontosid "
                "ei seotud. Andmeid saab parandada klassijuhataja või kooli administraator.",
                schools=", ".join(exc.schools),
            ),
        ),
        linking.NotLinked: (
            _("Seost ei leitud"),
            _("Sul ei ole selles koolis seotud kontot. Ava oma Stuudium ID leht uuesti."),
        ),
        linking.OnlyAccount: (
            _("Pole midagi eemaldada"),
            _("Sul on ainult üks kool, nii et eemaldada pole midagi."),
        ),
    }
    title, message = pages[type(exc)]
    return error_page(title, message, exc.status)


def _school_by_slug(slug: str) -> School | None:
    return get_db().scalar(
        select(School).where(School.slug == slug[:64], School.status == "active")
    )


def _back_to_school(school_id: int | None, path: str = "/profile") -> str:
    """The way back: the school's login initiation URI (OIDC Core §4), so that it signs in
    silently again and its navigation shows the newly linked schools."""
    school = get_db().get(School, school_id) if school_id is not None else None
    return school_login_uri(get_db(), school, path) if school else url_for("account.overview")


@bp.get("/link/start")
@signed_in
def start_page() -> Any:
    """Choose the other school whose account to link."""
    source = _school_by_slug(request.args.get("school", ""))
    return render_template(
        "link_start.html",
        person=g.person,
        source=source,
        schools=linking.linkable_schools(get_db(), g.person.id),
    )


@bp.post("/link/start")
@signed_in
def start() -> Any:
    """Create the attempt for the chosen school and show that school's login form."""
    check_csrf()
    db = get_db()
    target = _school_by_slug(request.form.get("target", ""))
    if target is None or target not in linking.linkable_schools(db, g.person.id):
        return error_page(
            _("Seda kooli ei saa valida"),
            _(
                "Selle kooliga ei saa sinu kontot siduda – võib-olla on sul seal juba konto. "
                "Mine tagasi ja vali kool nimekirjast."
            ),
            400,
        )
    source = _school_by_slug(request.form.get("source", ""))
    raw = linking.start(
        db, g.live_session.sid, g.person.id, source.id if source is not None else None, target.id
    )
    return render_template("link_login.html", attempt=raw, school=target, email="", error=None)


@bp.post("/link/login")
@limits.forms()
@signed_in
def login() -> Any:
    """The other account's password: a proof stored in the attempt, never a session."""
    check_csrf()
    db = get_db()
    try:
        attempt = linking.open_attempt(db, request.form.get("attempt", ""), g.live_session.sid)
    except LinkRefused as exc:
        return refusal_page(exc)
    school = db.get(School, attempt.target_school_id)
    if school is None or request.form.get("school", "") != school.slug:
        return refusal_page(linking.WrongSchool())
    pipe = batch(transaction=False)
    email, account = password_login(db, attempt.target_school_id, pipe)
    if account is None:
        return render_template(
            "link_login.html",
            attempt=request.form["attempt"],
            school=school,
            email=email,
            error=wrong_password(),
        )
    pipe.execute()
    return _proven(db, attempt, request.form["attempt"], account.person_id, account.id, school)


def _proven(
    db: Any, attempt: Any, raw: str, person_id: int, account_id: int, school: School
) -> Any:
    """The other account is proven (password or eID): compare the data, then ask to confirm."""
    if person_id == g.person.id:
        return refusal_page(linking.AlreadyLinked())
    linking.prove(db, attempt, account_id)  # committed by the request, or with the mismatch
    theirs = db.get(Person, person_id)
    assert theirs is not None
    diff = linking.differences(g.person, theirs)
    if diff:
        linking.mark_mismatch(db, attempt)
        schools = sorted({a.school.name for a in (*g.person.accounts, *theirs.accounts)})
        return render_template(
            "link_mismatch.html", fields=[_field_names()[f] for f in diff], schools=schools
        ), 409
    return render_template(
        "link_confirm.html",
        attempt=raw,
        school=school,
        mine=linking.linked_accounts(db, g.person.id),
        theirs=linking.linked_accounts(db, theirs.id),
        choices=linking.contact_choices(g.person, theirs),
        labels=_field_names(),
    )


def open_for_eid(raw: str) -> Any:
    """The live attempt of this browser's session for an eID proof, or None (refused)."""
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    if live is None:
        return None
    try:
        return linking.open_attempt(get_db(), raw, live.sid)
    except LinkRefused:
        return None


@signed_in
def eid_proof(raw: str, identity: EidIdentity) -> Any:
    """The other account proven by eID: the attempt's school's account whose anchored code
    (school-recorded or eID-verified, never one an applicant typed) is the eID's, with the
    same names (idp.people.proofing)."""
    db = get_db()
    try:
        attempt = linking.open_attempt(db, raw, g.live_session.sid)
    except LinkRefused as exc:
        return refusal_page(exc)
    school = db.get(School, attempt.target_school_id)
    try:
        account = find_account(db, attempt.target_school_id, identity)
    except ProofingError as exc:
        return refusal_page(linking.EID_REFUSALS[type(exc)]([school.name] if school else []))
    if school is None:
        return refusal_page(linking.EidNoAccount())
    return _proven(db, attempt, raw, account.person_id, account.id, school)


@bp.post("/link/confirm")
@signed_in
def confirm() -> Any:
    """Merge the proven account into this person; its schools are told, its sessions end."""
    check_csrf()
    db = get_db()
    take_theirs = {n for n in linking.CONTACTS if request.form.get(n) == "theirs"}
    try:
        merged = linking.confirm(
            db, request.form.get("attempt", ""), g.live_session.sid, take_theirs
        )
    except LinkRefused as exc:
        return refusal_page(exc)
    # The session now opens more accounts: a new cookie secret, so a cookie seen before the
    # link (fixated or leaked) does not carry the wider reach.
    live = g.live_session
    secret, _renewed = sessions.renew(db, live, list(live.amr), live.acr)
    resp = make_response(
        render_template(
            "link_done.html",
            heading=_("Kontod on seotud"),
            message=_(
                "Nüüdsest avab üks sisselogimine kõik sinu koolid ning sinu isikuandmeid hoitakse "
                "kõigis koolides ühesugused."
            ),
            accounts=linking.linked_accounts(db, merged.person_id),
            back=_back_to_school(merged.source_school_id),
            back_label=_("Tagasi kooli"),
        )
    )
    set_sso_cookie(resp, secret)
    return resp


@bp.post("/account/unlink")
@signed_in
def unlink() -> Any:
    """Eemalda seos: the school's account becomes a person of its own."""
    check_csrf()
    db = get_db()
    school = _school_by_slug(request.form.get("school", ""))
    sid = g.live_session.sid
    try:
        done = linking.unlink(db, g.person, school.id if school is not None else -1)
    except LinkRefused as exc:
        return refusal_page(exc)
    assert school is not None
    message = _(
        "Kool %(school)s ei ole enam sinu teiste koolidega seotud. Sinna saab edaspidi "
        "sisse logida eraldi, selle kooli konto kaudu.",
        school=school.name,
    )
    if any(sid in e.session_ids for e in done.ended):
        # This browser had logged in with the account now split off: its session ended too.
        whole = next(e for e in done.ended if sid in e.session_ids)
        return logged_out_page(whole, heading=_("Seos on eemaldatud"), message=message)
    return render_template(
        "link_done.html",
        heading=_("Seos on eemaldatud"),
        message=message,
        accounts=linking.linked_accounts(db, g.person.id),
        back=url_for("account.overview"),
        back_label=_("Tagasi Stuudium ID lehele"),
    )
