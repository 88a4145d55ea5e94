"""member phone and birth date (kept in sync from the IdP); a student's own account

Revision ID: d0002
Revises: d0001
Create Date: 2026-11-29 14:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'd0002'
down_revision = 'd0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('diary_member', sa.Column('phone', sa.String(length=40), nullable=True))
    op.add_column('diary_member', sa.Column('birth_date', sa.Date(), nullable=True))
    with op.batch_alter_table('diary_student') as batch:
        batch.add_column(sa.Column('member_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_student_member', 'diary_member', ['member_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('diary_student') as batch:
        batch.drop_constraint('fk_student_member', type_='foreignkey')
        batch.drop_column('member_id')
    op.drop_column('diary_member', 'birth_date')
    op.drop_column('diary_member', 'phone')
