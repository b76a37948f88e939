"""broadcasts, sign-ups, job runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_runs',
    sa.Column('job_id', sa.String(length=80), nullable=False),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_job_runs')),
    comment='When each scheduled job last ran and last succeeded'
    )
    op.create_table('broadcasts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('audience', sa.String(length=120), nullable=False, comment='everyone | township:名 | branch:名 | role:secretary | category:类别'),
    sa.Column('training', sa.Boolean(), nullable=False, comment='members may answer 报名'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='pending | sending | sent'),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('mass_msg_ids', sa.Text(), nullable=False, comment='msg_id of each mass job, comma-separated'),
    sa.Column('mass_sent', sa.Integer(), nullable=False, comment='from MASSSENDJOBFINISH'),
    sa.Column('mass_errors', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['people.id'], name=op.f('fk_broadcasts_author_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts')),
    comment='Notices (通知) the department sent'
    )
    op.create_table('broadcast_recipients',
    sa.Column('broadcast_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False, comment='mass (counts toward 4 a month) | outbox (customer-service, template...)'),
    sa.Column('month', sa.String(length=7), nullable=False, comment='YYYY-MM, local'),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_broadcast_recipients_broadcast_id_broadcasts')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_broadcast_recipients_person_id_people')),
    sa.PrimaryKeyConstraint('broadcast_id', 'openid', name=op.f('pk_broadcast_recipients')),
    comment='Who each broadcast went to, and how'
    )
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_broadcast_recipients_month'), ['month'], unique=False)

    op.create_table('signups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('broadcast_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name=op.f('fk_signups_broadcast_id_broadcasts')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_signups_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signups')),
    sa.UniqueConstraint('broadcast_id', 'person_id', name='uq_signups_broadcast_person'),
    comment='报名: members who signed up for a training session'
    )


def downgrade() -> None:
    op.drop_table('signups')
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_broadcast_recipients_month'))

    op.drop_table('broadcast_recipients')
    op.drop_table('broadcasts')
    op.drop_table('job_runs')
