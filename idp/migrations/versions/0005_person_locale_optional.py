"""a person's language is their choice: none until they make one

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 12:00:00

person.locale was Estonian by default, so a person who never chose a language looked as if they
had chosen Estonian, and that beat the browser's own language. It may now be empty: pages then
follow the browser (Accept-Language), mail the language of the page that sent it. Existing
values stay: which of them were chosen cannot be told apart afterwards.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.alter_column('locale', existing_type=sa.String(length=8), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE person SET locale = 'et' WHERE locale IS NULL")
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.alter_column('locale', existing_type=sa.String(length=8), nullable=False)
