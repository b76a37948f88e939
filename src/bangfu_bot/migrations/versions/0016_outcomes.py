"""outcomes: the year's plan, household and loan outcomes, passings, training attendance

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

What came of the help (issue 19). `people.passed_away_on` lets every domain below the
outcomes leave out a member who passed away (loan reminders, visit lists) without reading
the outcomes' tables.
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column(
            'passed_away_on', sa.Date(), nullable=True,
            comment='去世: set once recorded (outcomes.passings); nothing is sent to them after'))
    op.create_table(
        'year_plans',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('raise_fen', sa.JSON(), nullable=False,
                  comment='fund-raising target by source (fund.service.SOURCES) → fen'),
        sa.Column('fund_size_fen', sa.BigInteger(), nullable=False,
                  comment='基金规模目标, fen'),
        sa.Column('loan_members', sa.Integer(), nullable=False,
                  comment='扶贫党员: members to lend to'),
        sa.Column('visit_budget_fen', sa.BigInteger(), nullable=False,
                  comment='走访慰问预算, fen'),
        sa.Column('trainings', sa.Integer(), nullable=False, comment='技术培训场次'),
        sa.Column('set_by', Id, nullable=True, comment='NULL: command line'),
        sa.Column('channel', sa.String(length=16), nullable=False, comment='cli | chat'),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['set_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        comment="年度计划: the department's targets for a year; the latest row of a year stands",
    )
    op.create_index('ix_year_plans_year', 'year_plans', ['year'])
    op.create_table(
        'household_outcomes',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('ledger_entry_id', Id, nullable=False),
        sa.Column('person_id', Id, nullable=False),
        sa.Column('year', sa.Integer(), nullable=False, comment='the ledger year reviewed'),
        sa.Column('household_size', sa.Integer(), nullable=False),
        sa.Column('income_before_fen', sa.BigInteger(), nullable=False,
                  comment="the entry's income"),
        sa.Column('income_after_fen', sa.BigInteger(), nullable=False,
                  comment='income since last year'),
        sa.Column('income_by_source', sa.JSON(), nullable=False,
                  comment='farming | wages | allowances | pension | other → fen; empty when '
                          'unchanged'),
        sa.Column('continued', sa.Boolean(), nullable=False, comment='继续帮扶 next year'),
        sa.Column('out_of_hardship', sa.Boolean(), nullable=False, comment='脱贫'),
        sa.Column('reason', sa.String(length=24), nullable=True,
                  comment='project_income | work_found | pension | medical_ended | moved | '
                          'passed_away | other'),
        sa.Column('recorded_by', Id, nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entries.id']),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.ForeignKeyConstraint(['recorded_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ledger_entry_id'),
        comment='What the help achieved for a household, asked at the yearly review',
    )
    op.create_index('ix_household_outcomes_person_id', 'household_outcomes', ['person_id'])
    op.create_index('ix_household_outcomes_year', 'household_outcomes', ['year'])
    op.create_table(
        'loan_outcomes',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('loan_id', Id, nullable=False),
        sa.Column('occasion', sa.String(length=16), nullable=False,
                  comment='repaid | term_end | written_off'),
        sa.Column('horizon', sa.String(length=8), nullable=False,
                  comment='short (短平快) | long (长期)'),
        sa.Column('expected_fen', sa.BigInteger(), nullable=False,
                  comment='what the application expected'),
        sa.Column('earned_fen', sa.BigInteger(), nullable=False,
                  comment='what the project earned'),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('recorded_by', Id, nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['loan_id'], ['loans.id']),
        sa.ForeignKeyConstraint(['recorded_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('loan_id', 'occasion', name='uq_loan_outcomes_loan_occasion'),
        comment="A loan project's follow-up: earned against expected",
    )
    op.create_index('ix_loan_outcomes_loan_id', 'loan_outcomes', ['loan_id'])
    op.create_table(
        'passings',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('person_id', Id, nullable=False),
        sa.Column('passed_on', sa.Date(), nullable=False),
        sa.Column('recorded_by', Id, nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.ForeignKeyConstraint(['recorded_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id'),
        comment='去世: a member who passed away; nothing is sent to them after',
    )
    op.create_table(
        'training_attendance',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('broadcast_id', Id, nullable=False),
        sa.Column('person_id', Id, nullable=False),
        sa.Column('signed_in_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id']),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('broadcast_id', 'person_id', name='uq_training_attendance'),
        comment='签到: who came to a training session',
    )
    op.create_index('ix_training_attendance_broadcast_id', 'training_attendance',
                    ['broadcast_id'])
    op.create_index('ix_training_attendance_person_id', 'training_attendance', ['person_id'])


def downgrade() -> None:
    op.drop_table('training_attendance')
    op.drop_table('passings')
    op.drop_table('loan_outcomes')
    op.drop_table('household_outcomes')
    op.drop_table('year_plans')
    with op.batch_alter_table('people') as batch:
        batch.drop_column('passed_away_on')
