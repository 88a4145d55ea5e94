"""a school's own logo (its URL at the IdP), for its own place in the navigation bar; an
announcement's audience (one class, or the whole school)

Revision ID: d0003
Revises: d0002
Create Date: 2026-12-07 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'd0003'
down_revision = 'd0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('diary_tenant', sa.Column('logo_url', sa.String(length=500), nullable=True))
    with op.batch_alter_table('diary_announcement') as batch:
        batch.add_column(sa.Column('class_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_announcement_class', 'diary_class', ['class_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('diary_announcement') as batch:
        batch.drop_constraint('fk_announcement_class', type_='foreignkey')
        batch.drop_column('class_id')
    with op.batch_alter_table('diary_tenant') as batch:
        batch.drop_column('logo_url')
