"""linking accounts: link attempts, and persons marked merged

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 14:40:00
"""
from alembic import op
import sqlalchemy as sa
import idp.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_attempt',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('source_school_id', sa.Integer(), nullable=True),
    sa.Column('target_school_id', sa.Integer(), nullable=False),
    sa.Column('target_account_id', sa.Integer(), nullable=True),
    sa.Column('proven_at', idp.models.TZDateTime(), nullable=True),
    sa.Column('created_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('expires_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('used_at', idp.models.TZDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['source_school_id'], ['school.id'], ),
    sa.ForeignKeyConstraint(['target_school_id'], ['school.id'], ),
    sa.ForeignKeyConstraint(['target_account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_attempt_person_id'), ['person_id'], unique=False)
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_person_merged_into', 'person', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_constraint('fk_person_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into_id')
    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_attempt_person_id'))
    op.drop_table('link_attempt')
