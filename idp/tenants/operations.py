"""What the ops CLI does beyond registration: branding, disabling a school, delivery
statistics and the audit export."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.models import Account, AuditEvent, Client, Delivery, School, SsoSession, utcnow
from idp.sso.logout import Scope, end_sessions
from idp.tenants.schools import check_uri

_URI_FIELDS = (
    "backchannel_logout_uri",
    "frontchannel_logout_uri",
    "events_uri",
    "initiate_login_uri",
)


def update_school(
    db: Session,
    school: School,
    *,
    name: str | None,
    logo: str | None,
    url: str | None,
    development: bool,
) -> list[str]:
    """Change a school's name, logo or address (its clients' URIs under the old address move
    with it); return what changed."""
    changed = []
    if name is not None and name != school.name:
        school.name = name
        changed.append("name")
    if logo is not None:
        school.logo = logo or None  # "" removes the logo
        changed.append("logo")
    if url is not None:
        new, old = check_uri(url, development).rstrip("/"), school.base_url
        if new != old:
            for client in db.scalars(select(Client).where(Client.school_id == school.id)):
                client.redirect_uris = [_moved(u, old, new) for u in client.redirect_uris]
                client.post_logout_redirect_uris = [
                    _moved(u, old, new) for u in client.post_logout_redirect_uris
                ]
                for field in _URI_FIELDS:
                    value = getattr(client, field)
                    if value:
                        setattr(client, field, _moved(value, old, new))
            school.base_url = new
            changed.append("url")
    if changed:
        db.add(
            AuditEvent(
                action="school.update",
                actor="ops",
                school_id=school.id,
                details={"changed": changed},
            )
        )
    return changed


def _moved(uri: str, old: str, new: str) -> str:
    return new + uri[len(old) :] if uri == old or uri.startswith(old + "/") else uri


def end_school_sessions(db: Session, school: School) -> tuple[int, int]:
    """End the school's part of every live session (single logout: the schools are told);
    return (sessions ended or left, logout messages queued)."""
    people = db.scalars(
        select(SsoSession.person_id)
        .distinct()
        .where(
            SsoSession.ended_at.is_(None),
            SsoSession.person_id.in_(
                select(Account.person_id).where(Account.school_id == school.id)
            ),
        )
    ).all()
    touched = queued = 0
    for person_id in people:
        ended = end_sessions(db, Scope(person_id=person_id, school_id=school.id), "school_disabled")
        touched += len(ended.session_ids) + len(ended.left_session_ids)
        queued += len(ended.delivery_ids)
    return touched, queued


def disable_school(db: Session, school: School) -> None:
    """Mark a school disabled (its clients stop authenticating) and commit."""
    school.status = "disabled"
    db.add(AuditEvent(action="school.disable", actor="ops", school_id=school.id, details={}))
    db.commit()


def delivery_stats(db: Session, school: School | None = None) -> dict[str, Any]:
    """Deliveries by kind and state, the oldest undelivered per kind, the schools waiting most
    (all of them, or one school's)."""
    mine = (
        []
        if school is None
        else [Delivery.client_id.in_(select(Client.id).where(Client.school_id == school.id))]
    )
    by_state: dict[str, dict[str, int]] = {}
    for kind, state, n in db.execute(
        select(Delivery.kind, Delivery.state, func.count())
        .where(*mine)
        .group_by(Delivery.kind, Delivery.state)
    ):
        by_state.setdefault(kind, {})[state] = n
    now = utcnow()
    oldest = {
        kind: round((now - at).total_seconds(), 1)
        for kind, at in db.execute(
            select(Delivery.kind, func.min(Delivery.created_at))
            .where(Delivery.state == "pending", *mine)
            .group_by(Delivery.kind)
        )
        if at is not None
    }
    waiting = db.execute(
        select(School.slug, func.count())
        .select_from(Delivery)
        .join(Client, Client.id == Delivery.client_id)
        .join(School, School.id == Client.school_id)
        .where(Delivery.state.in_(("pending", "failed", "dead")), *mine)
        .group_by(School.slug)
        .order_by(func.count().desc(), School.slug)
        .limit(10)
    ).all()
    return {
        "by_state": by_state,
        "oldest_pending_seconds": oldest,
        "schools_waiting": [{"school": slug, "undelivered": n} for slug, n in waiting],
    }


def audit_rows(db: Session, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Audit events from the start of start to the end of end (UTC), oldest first."""
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    rows = db.execute(
        select(AuditEvent, School.slug)
        .outerjoin(School, School.id == AuditEvent.school_id)
        .where(AuditEvent.at >= since, AuditEvent.at < until)
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    return [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "action": e.action,
            "actor": e.actor,
            "school": slug,
            "person_id": e.person_id,
            "details": e.details,
        }
        for e, slug in rows
    ]
