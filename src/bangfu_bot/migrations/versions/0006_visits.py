"""visit campaigns, visits, visit sends

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visit_campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False, comment='one campaign per festival date (or event, household and day)'),
    sa.Column('occasion', sa.String(length=16), nullable=False, comment='spring_festival | july_first | double_ninth | custom | event'),
    sa.Column('name', sa.String(length=60), nullable=False, comment='e.g. 2027年春节走访慰问'),
    sa.Column('occasion_on', sa.Date(), nullable=False, comment="the festival (or the event's) date"),
    sa.Column('deadline', sa.Date(), nullable=False, comment='visits to be made by this day'),
    sa.Column('ledger_year', sa.Integer(), nullable=False, comment='the ledger year the list is from'),
    sa.Column('cash_fen', sa.BigInteger(), nullable=False, comment='standard cash per household, fen'),
    sa.Column('goods', sa.String(length=100), nullable=True, comment='standard goods per household'),
    sa.Column('reminder_days', sa.JSON(), nullable=False, comment='days before the deadline to remind assignees, e.g. [14, 7, 3]'),
    sa.Column('late_reports', sa.Boolean(), nullable=False, comment='whether visits may still be reported after the deadline'),
    sa.Column('event_kind', sa.String(length=16), nullable=True, comment='for events: 生病住院 | 受灾 | ...'),
    sa.Column('situation', sa.Text(), nullable=True, comment='for events: what happened'),
    sa.Column('opened_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='department staff or secretary; NULL from the command line'),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['opened_by'], ['people.id'], name=op.f('fk_visit_campaigns_opened_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_campaigns')),
    sa.UniqueConstraint('key', name=op.f('uq_visit_campaigns_key')),
    comment='Consolation-visit campaigns (走访慰问), festival rounds and event visits'
    )
    op.create_table('visits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, comment='the member whose household is visited'),
    sa.Column('branch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment="the member's branch when listed (progress is counted by it)"),
    sa.Column('source', sa.String(length=16), nullable=False, comment='ledger | pre_1949 | event'),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='who is to visit; NULL when nobody could be assigned'),
    sa.Column('assigned_as', sa.String(length=16), nullable=False, comment='paired_cadre | secretary | opener | nobody'),
    sa.Column('visited_on', sa.Date(), nullable=True, comment='走访日期; NULL until reported'),
    sa.Column('cash_fen', sa.BigInteger(), nullable=True, comment='慰问金 given, fen'),
    sa.Column('goods', sa.String(length=100), nullable=True, comment='慰问品 given'),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('photos', sa.JSON(), nullable=True, comment='WeChat media ids'),
    sa.Column('reported_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fund_movement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='the relief movement that paid the cash'),
    sa.ForeignKeyConstraint(['assignee_id'], ['people.id'], name=op.f('fk_visits_assignee_id_people')),
    sa.ForeignKeyConstraint(['branch_id'], ['organisations.id'], name=op.f('fk_visits_branch_id_organisations')),
    sa.ForeignKeyConstraint(['campaign_id'], ['visit_campaigns.id'], name=op.f('fk_visits_campaign_id_visit_campaigns')),
    sa.ForeignKeyConstraint(['fund_movement_id'], ['fund_movements.id'], name=op.f('fk_visits_fund_movement_id_fund_movements')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_visits_person_id_people')),
    sa.ForeignKeyConstraint(['reported_by'], ['people.id'], name=op.f('fk_visits_reported_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    sa.UniqueConstraint('campaign_id', 'person_id', name='uq_visits_campaign_household'),
    comment="One household on a campaign's list, and its visit once reported"
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visits_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_person_id'), ['person_id'], unique=False)

    op.create_table('visit_sends',
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, comment='the official told'),
    sa.Column('what', sa.String(length=24), nullable=False, comment="list | remind:<days> | watch (the township's not-visited list)"),
    sa.Column('todo_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['visit_campaigns.id'], name=op.f('fk_visit_sends_campaign_id_visit_campaigns')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_visit_sends_person_id_people')),
    sa.ForeignKeyConstraint(['todo_id'], ['todos.id'], name=op.f('fk_visit_sends_todo_id_todos')),
    sa.PrimaryKeyConstraint('campaign_id', 'person_id', 'what', name=op.f('pk_visit_sends')),
    comment='What each official was sent about a campaign, so each is sent once'
    )


def downgrade() -> None:
    op.drop_table('visit_sends')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visits_person_id'))
        batch_op.drop_index(batch_op.f('ix_visits_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_visits_branch_id'))
        batch_op.drop_index(batch_op.f('ix_visits_assignee_id'))

    op.drop_table('visits')
    op.drop_table('visit_campaigns')
