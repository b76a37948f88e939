"""fund movements and loans

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fund_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='contribution | relief | loan_out | principal_in | interest_in | write_off'),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False, comment='always positive; kind gives sign'),
    sa.Column('source', sa.String(length=24), nullable=True, comment='for contributions: county_finance | committee | party_dues | donation | welfare_fund'),
    sa.Column('document', sa.String(length=100), nullable=False, comment='source document (receipt, file no.)'),
    sa.Column('occurred_on', sa.Date(), nullable=False, comment='the date on the document'),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('visit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_fund_movements_positive_amount')),
    sa.ForeignKeyConstraint(['recorded_by'], ['people.id'], name=op.f('fk_fund_movements_recorded_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_movements')),
    comment='Every movement of the fund, with its source document'
    )
    with op.batch_alter_table('fund_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fund_movements_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_fund_movements_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fund_movements_visit_id'), ['visit_id'], unique=False)

    op.create_table('loans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('branch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False, comment='see loans.enums'),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('project', sa.String(length=40), nullable=False, comment='项目: 生猪养殖, 烤烟, ...'),
    sa.Column('earnings', sa.Text(), nullable=False, comment='what the project will earn'),
    sa.Column('schedule_kind', sa.String(length=16), nullable=False, comment='bullet | yearly | equal_principal'),
    sa.Column('term_years', sa.Integer(), nullable=False),
    sa.Column('annual_rate_bp', sa.Integer(), nullable=False, comment='interest, basis points a year'),
    sa.Column('inspected_on', sa.Date(), nullable=True, comment='组织部实地考核'),
    sa.Column('inspector', sa.String(length=40), nullable=True),
    sa.Column('inspection_finding', sa.Text(), nullable=True),
    sa.Column('guarantor', sa.String(length=60), nullable=True, comment='乡镇财政担保'),
    sa.Column('guarantee_document', sa.String(length=60), nullable=True),
    sa.Column('disbursed_on', sa.Date(), nullable=True),
    sa.Column('disbursement_document', sa.String(length=60), nullable=True),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='the staff member who recorded the disbursement'),
    sa.Column('confirmed_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='a different staff member who confirmed it'),
    sa.Column('write_off_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['organisations.id'], name=op.f('fk_loans_branch_id_organisations')),
    sa.ForeignKeyConstraint(['confirmed_by'], ['people.id'], name=op.f('fk_loans_confirmed_by_people')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_loans_person_id_people')),
    sa.ForeignKeyConstraint(['recorded_by'], ['people.id'], name=op.f('fk_loans_recorded_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
    comment='Loans from the revolving fund'
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_status'), ['status'], unique=False)

    op.create_table('instalments',
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False),
    sa.Column('interest_fen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_instalments_loan_id_loans')),
    sa.PrimaryKeyConstraint('loan_id', 'number', name=op.f('pk_instalments')),
    comment='The repayment schedule; unpaid future instalments are regenerated after an early repayment'
    )
    op.create_table('loan_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['people.id'], name=op.f('fk_loan_events_actor_id_people')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_events_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_events')),
    comment='Append-only audit of every loan transition'
    )
    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_events_loan_id'), ['loan_id'], unique=False)

    op.create_table('repayments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('interest_fen', sa.BigInteger(), nullable=False, comment='part applied to interest'),
    sa.Column('principal_fen', sa.BigInteger(), nullable=False, comment='part applied to principal'),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('receipt', sa.String(length=60), nullable=False),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_repayments_loan_id_loans')),
    sa.ForeignKeyConstraint(['recorded_by'], ['people.id'], name=op.f('fk_repayments_recorded_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayments')),
    sa.UniqueConstraint('loan_id', 'receipt', name='uq_repayments_loan_receipt'),
    comment='Repayments received (还款)'
    )
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayments_loan_id'), ['loan_id'], unique=False)


    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      sa.ForeignKey('loans.id', name='fk_todos_loan_id_loans'),
                                      nullable=True))

def downgrade() -> None:
    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.drop_column('loan_id')
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayments_loan_id'))

    op.drop_table('repayments')
    with op.batch_alter_table('loan_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_events_loan_id'))

    op.drop_table('loan_events')
    op.drop_table('instalments')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loans_status'))
        batch_op.drop_index(batch_op.f('ix_loans_person_id'))

    op.drop_table('loans')
    with op.batch_alter_table('fund_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fund_movements_visit_id'))
        batch_op.drop_index(batch_op.f('ix_fund_movements_loan_id'))
        batch_op.drop_index(batch_op.f('ix_fund_movements_kind'))

    op.drop_table('fund_movements')
