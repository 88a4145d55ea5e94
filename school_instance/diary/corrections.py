"""Correcting people's data: a class teacher corrects the children of their classes and those
children's guardians, an admin anyone in the school. The data live at Stuudium ID: the form
shows the current values and version from the IdP's tenant admin API, and the correction goes
back there version-checked, so that a change made meanwhile is shown rather than overwritten."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from school_instance import admin_api, sync
from school_instance.diary import queries
from school_instance.diary.accounts import failure
from school_instance.diary.blueprint import bp, has_role
from school_instance.diary.forms import Form
from school_instance.models import Member, SchoolClass, Student
from school_instance.sso import page, role_required
from school_instance.tenancy import current, scoped
from shared.db import get_db
from shared.phones import is_phone
from shared.security import check_csrf


@dataclass(frozen=True)
class ChildGroup:
    """One child of a class the teacher leads: the child's own account, if any, and the
    guardians the school knows."""

    student: Student
    school_class: SchoolClass
    account: Member | None
    guardians: list[Member]


def child_groups() -> list[ChildGroup]:
    """A class teacher's people, grouped by child (an admin sees everyone in one list)."""
    if has_role("admin") or not has_role("teacher"):
        return []
    taught = [
        (cls, s)
        for cls in queries.classes_taught(queries.my_id())
        for s in queries.students_of(cls.id)
    ]
    accounts = queries.members_by_id(s.member_id for _cls, s in taught)
    guardians = queries.guardians_by_student(s.id for _cls, s in taught)
    return [
        ChildGroup(
            s, cls, accounts.get(s.member_id) if s.member_id else None, guardians.get(s.id, [])
        )
        for cls, s in taught
    ]


def correctable(groups: list[ChildGroup] | None = None) -> list[Member]:
    """The people the signed-in person may correct (with an account at the school): an admin
    everyone, a class teacher the children of their classes and those children's guardians."""
    if has_role("admin"):
        rows = get_db().scalars(scoped(Member).where(Member.sub.is_not(None))).all()
        return sorted(rows, key=queries.person_key)
    people = {
        m.id: m
        for g in (child_groups() if groups is None else groups)
        for m in ([g.account] if g.account else []) + g.guardians
    }
    return sorted((m for m in people.values() if m.sub), key=queries.person_key)


def _may_correct(sub: str) -> bool:
    # An admin may correct any account of the school (the IdP keeps it to this school).
    return has_role("admin") or any(m.sub == sub for m in correctable())


def _not_yours() -> Response:
    return page(
        _("Selle inimese andmeid sa parandada ei saa"),
        _(
            "Klassijuhataja saab parandada oma klassi laste ja nende vanemate andmeid, kooli "
            "administraator kõigi andmeid. Pöördu vajadusel kooli administraatori poole."
        ),
        403,
        (_("Isikuandmete juurde"), url_for("diary.people")),
    )


def _back() -> tuple[str, str]:
    return (_("Isikuandmete juurde"), url_for("diary.people"))


def _idp_failure(exc: admin_api.AdminApiError) -> Response:
    if exc.status == 403:
        return page(
            _("Sul ei ole õigust andmeid parandada"),
            _(
                "Stuudium ID andmetel ei ole sul selles koolis õpetaja ega administraatori rolli. "
                "Kui see on viga, pöördu kooli juhtkonna poole."
            ),
            403,
            (_("Avalehele"), "/"),
        )
    return failure(exc, _back())


def _values(data: dict[str, Any]) -> dict[str, str]:
    """The form's fields from the IdP's data of a person."""
    birth = data.get("birthdate")
    return {
        "given_name": data.get("given_name") or "",
        "family_name": data.get("family_name") or "",
        "phone": data.get("phone_number") or "",
        "birth_date": dt.date.fromisoformat(birth).strftime("%d.%m.%Y") if birth else "",
        "version": str(data.get("version") or ""),
    }


def _keep(sub: str, data: dict[str, Any]) -> None:
    """Fetched on demand: the school's copy takes the IdP's data when it is newer."""
    if isinstance(data.get("version"), int):
        sync.apply(current().id, sub, data["version"], data)


def _form_page(
    sub: str, data: dict[str, Any], form: Form, status: int = 200, conflict: bool = False
) -> Any:
    return render_template(
        "diary/correct.html", sub=sub, person=data, form=form, conflict=conflict
    ), status


@bp.get("/people")
@role_required("teacher", "admin")
def people() -> Any:
    """Whose data the signed-in person may correct."""
    groups = child_groups()
    return render_template("diary/people.html", people=correctable(groups), groups=groups)


@bp.get("/people/<sub>/correct")
@role_required("teacher", "admin")
def correct_form(sub: str) -> Any:
    """The person's current data from Stuudium ID, in a form."""
    if not _may_correct(sub):
        return _not_yours()
    try:
        data = admin_api.person(current(), g.user["sub"], sub)
    except admin_api.AdminApiError as exc:
        return _idp_failure(exc)
    _keep(sub, data)
    return _form_page(sub, data, Form(_values(data)))


def _birth_date(form: Form) -> dt.date | None:
    value = form.get("birth_date")
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            born = dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if dt.date(1900, 1, 1) <= born <= dt.date.today():
            return born
    if value:
        form.errors["birth_date"] = _(
            "Sünnikuupäev ei ole korrektne. Kirjuta see kujul pp.kk.aaaa, näiteks 05.03.2015."
        )
    return None


@bp.post("/people/<sub>/correct")
@role_required("teacher", "admin")
def correct(sub: str) -> Any:
    """Send the correction with the version the form showed; a change made meanwhile (409)
    shows the current data and the form again."""
    check_csrf()
    if not _may_correct(sub):
        return _not_yours()
    form = Form(request.form)
    given = form.text("given_name", _("Kirjuta eesnimi."), 200)
    family = form.text("family_name", _("Kirjuta perekonnanimi."), 200)
    phone = form.text("phone", "", 40, required=False)
    if phone and not is_phone(phone):
        form.errors["phone"] = _("Telefoninumber ei ole korrektne, näiteks +372 5123 4567.")
    born = _birth_date(form)
    version = form.get("version")
    if not version.isdigit():
        form.errors["version"] = _("Laadi leht uuesti ja proovi veel kord.")
    if not form.ok:
        return _form_page(sub, {"given_name": given, "family_name": family}, form, 400)
    try:
        done = admin_api.correct(
            current(),
            g.user["sub"],
            sub,
            int(version),
            {
                "given_name": given,
                "family_name": family,
                "phone_number": phone or None,
                "birthdate": born.isoformat() if born else None,
            },
        )
    except admin_api.AdminApiError as exc:
        now = exc.body.get("current")
        if exc.status == 409 and exc.error == "version_mismatch" and isinstance(now, dict):
            _keep(sub, now)
            return _form_page(sub, now, Form(_values(now)), 409, conflict=True)
        return _idp_failure(exc)
    account = done.get("account") or {}
    _keep(sub, account)
    flash(
        _(
            "%(name)s andmed on parandatud; need jõuavad kõigisse koolidesse, kus tal on konto.",
            name=f"{account.get('given_name', given)} {account.get('family_name', family)}",
        )
        if done.get("changed")
        else _("Andmed olid juba sellised; midagi ei muutunud.")
    )
    return redirect(url_for("diary.people"), 303)
