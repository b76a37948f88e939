"""roster, bindings, conversations, cases, todos

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('binding_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_binding_attempts')),
    comment='Every binding try; five failures in an hour lock binding for that openid'
    )
    with op.batch_alter_table('binding_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_binding_attempts_openid'), ['openid'], unique=False)

    op.create_table('conversations',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('flow', sa.String(length=40), nullable=True, comment='the flow under way or paused'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='idle | active | paused'),
    sa.Column('state', sa.JSON(), nullable=False, comment='step, answers, history, retries ...'),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, comment='last answer: drives expiry'),
    sa.PrimaryKeyConstraint('openid', name=op.f('pk_conversations')),
    comment='Where each user stands in a dialogue; drafts survive restarts'
    )
    op.create_table('organisations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='county | committee (党委) | branch (支部)'),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['organisations.id'], name=op.f('fk_organisations_parent_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('parent_id', 'name', name='uq_organisations_parent_name'),
    comment='The organisation tree: county department, township committees, branches'
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_parent_id'), ['parent_id'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False, comment='姓名'),
    sa.Column('gender', sa.String(length=4), nullable=True, comment='性别: 男 | 女'),
    sa.Column('birth_date', sa.Date(), nullable=True, comment='出生日期'),
    sa.Column('joined_on', sa.Date(), nullable=True, comment='入党日期'),
    sa.Column('id_number', sa.String(length=18), nullable=False, comment='身份证号 (never logged)'),
    sa.Column('phone', sa.String(length=20), nullable=True, comment='手机号 (never logged)'),
    sa.Column('branch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('urban_rural', sa.String(length=4), nullable=True, comment='城乡: 城镇 | 农村'),
    sa.Column('active', sa.Boolean(), nullable=False, comment='false once left the roster'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['organisations.id'], name=op.f('fk_people_branch_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('id_number', name=op.f('uq_people_id_number')),
    comment='Everyone on the roster: members and the officials who serve them'
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_people_name'), ['name'], unique=False)

    op.create_table('binding_tickets',
    sa.Column('scene', sa.String(length=64), nullable=False, comment="the QR code's scene string"),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_binding_tickets_person_id_people')),
    sa.PrimaryKeyConstraint('scene', name=op.f('pk_binding_tickets')),
    comment='Parametric QR codes issued per person; scanning one binds'
    )
    op.create_table('bindings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False, comment='chat | qrcode'),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('unbound_at', sa.DateTime(timezone=True), nullable=True, comment='set by 解绑; rows are never deleted'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_bindings_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bindings')),
    comment='Which WeChat user is which person; the active row has no unbound_at'
    )
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bindings_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_bindings_person_id'), ['person_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, comment='the member the case is about'),
    sa.Column('branch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='hardship (困难帮扶)'),
    sa.Column('status', sa.String(length=24), nullable=False, comment='see cases.enums'),
    sa.Column('category', sa.String(length=40), nullable=False, comment='困难类别'),
    sa.Column('help_wanted', sa.String(length=100), nullable=False, comment='想要的帮扶'),
    sa.Column('household_size', sa.Integer(), nullable=False),
    sa.Column('household_income_fen', sa.BigInteger(), nullable=False, comment='家庭年收入, fen'),
    sa.Column('looks_above_line', sa.Boolean(), nullable=False, comment='income above the eligibility line (the branch decides)'),
    sa.Column('answers', sa.JSON(), nullable=False, comment='everything the application collected'),
    sa.Column('filed_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, comment='the member, or the secretary filing on their behalf (代办)'),
    sa.Column('consent_recorded', sa.Boolean(), nullable=False, comment="for 代办: the member's consent was recorded"),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['organisations.id'], name=op.f('fk_cases_branch_id_organisations')),
    sa.ForeignKeyConstraint(['filed_by'], ['people.id'], name=op.f('fk_cases_filed_by_people')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_cases_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    comment='Applications for help and where each stands'
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_status'), ['status'], unique=False)

    op.create_table('person_roles',
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False, comment='member | secretary | committee | department | supervisor'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_person_roles_person_id_people')),
    sa.PrimaryKeyConstraint('person_id', 'role', name=op.f('pk_person_roles')),
    comment='Roles a person holds (a secretary is usually also a member)'
    )
    op.create_table('case_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False, comment='chat | cli | import | web'),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['people.id'], name=op.f('fk_case_events_actor_id_people')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    comment='Append-only audit of every case transition'
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_events_case_id'), ['case_id'], unique=False)

    op.create_table('todos',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False, comment='call_member | evaluate | ...'),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True, comment='the member it is about'),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['people.id'], name=op.f('fk_todos_assignee_id_people')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_todos_case_id_cases')),
    sa.ForeignKeyConstraint(['subject_id'], ['people.id'], name=op.f('fk_todos_subject_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_todos')),
    comment='To-dos (待办), oldest first'
    )
    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_todos_assignee_id'), ['assignee_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_todos_assignee_id'))

    op.drop_table('todos')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_events_case_id'))

    op.drop_table('case_events')
    op.drop_table('person_roles')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_status'))
        batch_op.drop_index(batch_op.f('ix_cases_person_id'))
        batch_op.drop_index(batch_op.f('ix_cases_branch_id'))

    op.drop_table('cases')
    with op.batch_alter_table('bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bindings_person_id'))
        batch_op.drop_index(batch_op.f('ix_bindings_openid'))

    op.drop_table('bindings')
    op.drop_table('binding_tickets')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_name'))
        batch_op.drop_index(batch_op.f('ix_people_branch_id'))

    op.drop_table('people')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_parent_id'))

    op.drop_table('organisations')
    op.drop_table('conversations')
    with op.batch_alter_table('binding_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_binding_attempts_openid'))

    op.drop_table('binding_attempts')
