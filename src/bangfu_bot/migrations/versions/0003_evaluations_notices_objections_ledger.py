"""evaluations, notices, objections, ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True,
                                      comment='custom | template | escalated: how it finally went'))
        batch_op.add_column(sa.Column('wechat_msgid', sa.BigInteger(), nullable=True,
                                      comment="a template's msgid, matched by TEMPLATESENDJOBFINISH"))
        batch_op.create_index(batch_op.f('ix_outbox_wechat_msgid'), ['wechat_msgid'], unique=False)
        batch_op.alter_column('status', existing_type=sa.String(length=16), existing_nullable=False,
                              comment='pending | sending | sent | delivered | escalated | undeliverable | unknown | failed')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_to', sa.String(length=24), nullable=True,
                                      comment='when returned: the status the committee sends it back to'))
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.alter_column('actor_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                              nullable=True,
                              comment='NULL when the system moved it (e.g. a notice period ended)')
        batch_op.alter_column('role', existing_type=sa.String(length=16), existing_nullable=False,
                              comment='member | secretary | ... | system')
    op.create_table('evaluations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=False, comment='评议会日期'),
    sa.Column('entitled', sa.Integer(), nullable=False, comment='应到党员'),
    sa.Column('present', sa.Integer(), nullable=False, comment='实到党员'),
    sa.Column('supervisors', sa.Text(), nullable=False, comment='监督人员'),
    sa.Column('counter', sa.String(length=40), nullable=False, comment='计票人'),
    sa.Column('scrutineer', sa.String(length=40), nullable=False, comment='监票人'),
    sa.Column('votes_for', sa.Integer(), nullable=False),
    sa.Column('votes_against', sa.Integer(), nullable=False),
    sa.Column('abstain', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Text(), nullable=False, comment='简要记录'),
    sa.Column('photo_media_id', sa.String(length=200), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False, comment='the pass rule applied'),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_evaluations_case_id_cases')),
    sa.ForeignKeyConstraint(['recorded_by'], ['people.id'], name=op.f('fk_evaluations_recorded_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    comment='Democratic evaluations (支部民主评议) of cases'
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_case_id'), ['case_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment="the filed case that opened this year's entry"),
    sa.Column('category', sa.String(length=40), nullable=False, comment='困难类别'),
    sa.Column('causes', sa.Text(), nullable=False, comment='致困原因'),
    sa.Column('household', sa.JSON(), nullable=False, comment='家庭成员'),
    sa.Column('household_size', sa.Integer(), nullable=False),
    sa.Column('annual_income_fen', sa.BigInteger(), nullable=False, comment='家庭年收入, fen'),
    sa.Column('situation', sa.Text(), nullable=False, comment='生产生活情况'),
    sa.Column('paired_cadre', sa.String(length=40), nullable=True, comment='结对帮扶干部'),
    sa.Column('assistance', sa.JSON(), nullable=False, comment='帮扶情况: a list of what was given'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='active | exited'),
    sa.Column('exit_reason', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('exited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_opened_at', sa.DateTime(timezone=True), nullable=True, comment='when the yearly review to-do went to the secretary'),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_ledger_entries_case_id_cases')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_ledger_entries_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('person_id', 'year', name='uq_ledger_entries_person_year'),
    comment='困难党员台帐: one entry per member per year'
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_person_id'), ['person_id'], unique=False)

    op.create_table('objections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('raised_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_objections_case_id_cases')),
    sa.ForeignKeyConstraint(['raised_by'], ['people.id'], name=op.f('fk_objections_raised_by_people')),
    sa.ForeignKeyConstraint(['resolved_by'], ['people.id'], name=op.f('fk_objections_resolved_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_objections')),
    comment='Objections (异议) raised during a public notice; an open one holds the case'
    )
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_objections_case_id'), ['case_id'], unique=False)

    op.create_table('public_notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False, comment='last day of the notice, inclusive'),
    sa.Column('place', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False, comment='the printable notice'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_public_notices_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_public_notices')),
    sa.UniqueConstraint('case_id', name=op.f('uq_public_notices_case_id')),
    comment='Public notices (公示) of cases that passed evaluation'
    )


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_wechat_msgid'))
        batch_op.drop_column('wechat_msgid')
        batch_op.drop_column('channel')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.alter_column('actor_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                              nullable=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('return_to')
    op.drop_table('public_notices')
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_objections_case_id'))

    op.drop_table('objections')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_person_id'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_case_id'))

    op.drop_table('evaluations')
