"""identity proofing: the address a one-time link was sent to; applicant-typed codes marked

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 04:00:00

A code that came from an application was stored as if the school had recorded it (and an eID
login could later mark it "eid" without proving that the eID holder owned the account). Every
person whose account was created by an approved application and whose code is still the one
typed in it is marked "applicant": not an anchor for eID until an eID login from a session that
controls the account confirms it. A code with no recorded source is treated the same way.
Unused links minted before this revision have no recorded address: they are voided (a person
asks for a new one), since they cannot be checked against the login e-mail.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def upgrade() -> None:
    with op.batch_alter_table('one_time_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_to', sa.String(length=320), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT a.person_id, p.isikukood, ap.data FROM application ap "
        "JOIN account a ON a.id = ap.account_id JOIN person p ON p.id = a.person_id "
        "WHERE ap.status = 'approved' AND p.isikukood IS NOT NULL")).all()
    applicant = sorted({r.person_id for r in rows if _data(r.data).get('isikukood') == r.isikukood})
    for person_id in applicant:
        conn.execute(sa.text("UPDATE person SET isikukood_source = 'applicant' WHERE id = :id"),
                     {"id": person_id})
    conn.execute(sa.text("UPDATE person SET isikukood_source = 'applicant' "
                         "WHERE isikukood IS NOT NULL AND isikukood_source IS NULL"))
    conn.execute(sa.text("UPDATE one_time_link SET used_at = CURRENT_TIMESTAMP "
                         "WHERE used_at IS NULL AND purpose IN ('access', 'welcome', 'email')"))


def downgrade() -> None:
    with op.batch_alter_table('one_time_link', schema=None) as batch_op:
        batch_op.drop_column('sent_to')
