"""parent accounts: one-time links, the mail outbox, application fields

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:50:00
"""
from alembic import op
import sqlalchemy as sa
import idp.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('one_time_link',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('expires_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('used_at', idp.models.TZDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_one_time_link_subject', 'one_time_link', ['purpose', 'subject'])
    op.create_table('mail_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('lease_until', idp.models.TZDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', idp.models.TZDateTime(), nullable=False),
    sa.Column('sent_at', idp.models.TZDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_mail_outbox_due', 'mail_outbox', ['state', 'next_attempt_at'])
    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=False,
                                      server_default='et'))
        batch_op.add_column(sa.Column('confirmed_at', idp.models.TZDateTime(), nullable=True))
        batch_op.add_column(sa.Column('submitted_at', idp.models.TZDateTime(), nullable=True))
        batch_op.add_column(sa.Column('decided_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_application_account', 'account', ['account_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.drop_constraint('fk_application_account', type_='foreignkey')
        for column in ('account_id', 'reason', 'decided_by', 'submitted_at', 'confirmed_at',
                       'locale'):
            batch_op.drop_column(column)
    op.drop_index('ix_mail_outbox_due', 'mail_outbox')
    op.drop_table('mail_outbox')
    op.drop_index('ix_one_time_link_subject', 'one_time_link')
    op.drop_table('one_time_link')
