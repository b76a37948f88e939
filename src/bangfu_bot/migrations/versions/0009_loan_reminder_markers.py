"""what the reminder scan keeps per loan, and the triggers that keep it honest

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Per loan: `covered_through`, the due date of the first instalment that everything repaid
does not cover (9999-12-31 when all are; NULL until the scan works it out), and the day the
scan last queued everything due for it (`reminded_on`, `reminded_version`,
`reminded_count`). `inputs_version` is bumped by triggers whenever anything that loan's
reminders depend on changes; `reminder_inputs.version` likewise for what every loan's
depend on (roles, organisations, officials' bindings, people moving or leaving). Since the
triggers fire on any write, from the services, a script or psql, a change can only make
the scan look again; nothing the scan keeps can go stale unnoticed.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# What each trigger does, as statements on {row} (NEW or OLD).
CHANGED_PLAN = ('UPDATE loans SET covered_through = NULL, inputs_version = inputs_version + 1 '
                'WHERE id = {row}.loan_id')
CHANGED_LOAN = 'UPDATE loans SET inputs_version = inputs_version + 1 WHERE id = {row}.id'
CHANGED_PERSON = ('UPDATE loans SET inputs_version = inputs_version + 1 '
                  'WHERE person_id = {row}.person_id')
CHANGED_ALL = 'UPDATE reminder_inputs SET version = version + 1'
CHANGED_OFFICIAL = (CHANGED_ALL + " WHERE EXISTS (SELECT 1 FROM person_roles WHERE "
                    "person_roles.person_id = {row}.person_id AND person_roles.role <> 'member')")

# table, events, what each row change does
TRIGGERS = [
    ('instalments', 'INSERT OR UPDATE OR DELETE', [CHANGED_PLAN]),
    ('repayments', 'INSERT OR UPDATE OR DELETE', [CHANGED_PLAN]),
    ('loans', 'UPDATE OF person_id, branch_id', [CHANGED_LOAN]),
    ('bindings', 'INSERT OR UPDATE', [CHANGED_PERSON, CHANGED_OFFICIAL]),
    ('people', 'UPDATE OF active, branch_id', [CHANGED_ALL]),
    ('person_roles', 'INSERT OR UPDATE OR DELETE', [CHANGED_ALL]),
    ('organisations', 'INSERT OR UPDATE OR DELETE', [CHANGED_ALL]),
]


def upgrade() -> None:
    op.add_column('loans', sa.Column(
        'covered_through', sa.Date(), nullable=True,
        comment='due date of the first instalment not covered by all repaid; 9999-12-31 when '
                'all are; NULL until the reminder scan works it out'))
    op.add_column('loans', sa.Column(
        'inputs_version', sa.Integer(), nullable=False, server_default='0',
        comment="bumped by triggers when anything this loan's reminders depend on changes"))
    op.add_column('loans', sa.Column(
        'reminded_on', sa.Date(), nullable=True,
        comment='the day the reminder scan last queued everything due for this loan'))
    op.add_column('loans', sa.Column(
        'reminded_version', sa.Integer(), nullable=True,
        comment='inputs_version as that scan read it'))
    op.add_column('loans', sa.Column(
        'reminded_count', sa.Integer(), nullable=True,
        comment='reminders due that day, guarantor calls left out (they are made once)'))
    op.create_index('ix_loans_coverage', 'loans', ['status', 'covered_through'])
    op.create_table(
        'reminder_inputs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False,
                  comment="bumped by triggers when what every loan's reminders depend on "
                          "changes"),
        sa.Column('scanned_on', sa.Date(), nullable=True,
                  comment='the day of the last complete reminder scan'),
        sa.Column('scanned_version', sa.Integer(), nullable=True,
                  comment='version as that scan read it at its start'),
        sa.PrimaryKeyConstraint('id'),
        comment='One row: what the reminder scan needs to know to skip loans done today')
    op.execute('INSERT INTO reminder_inputs (id, version) VALUES (1, 0)')
    if op.get_context().dialect.name == 'postgresql':
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table, events, actions in TRIGGERS:
        for event in events.split(' OR '):
            rows = {'INSERT': ['NEW'], 'DELETE': ['OLD']}.get(event.split()[0], ['OLD', 'NEW'])
            body = ' '.join(f'{action.format(row=row)};' for row in rows for action in actions)
            name = f'trg_{table}_{event.split()[0].lower()}_reminders'
            op.execute(f'CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW '
                       f'BEGIN {body} END')


def _postgresql_triggers() -> None:
    for table, events, actions in TRIGGERS:
        old = ' '.join(f'{action.format(row="OLD")};' for action in actions)
        new = ' '.join(f'{action.format(row="NEW")};' for action in actions)
        op.execute(f"""
            CREATE FUNCTION {table}_reminder_inputs() RETURNS trigger AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN {old} END IF;
                IF TG_OP <> 'DELETE' THEN {new} END IF;
                RETURN NULL;
            END $$ LANGUAGE plpgsql""")
        op.execute(f'CREATE TRIGGER trg_{table}_reminders AFTER {events} ON {table} '
                   f'FOR EACH ROW EXECUTE FUNCTION {table}_reminder_inputs()')


def downgrade() -> None:
    for table, events, _ in TRIGGERS:
        if op.get_context().dialect.name == 'postgresql':
            op.execute(f'DROP TRIGGER trg_{table}_reminders ON {table}')
            op.execute(f'DROP FUNCTION {table}_reminder_inputs()')
        else:
            for event in events.split(' OR '):
                op.execute(f'DROP TRIGGER trg_{table}_{event.split()[0].lower()}_reminders')
    op.drop_table('reminder_inputs')
    op.drop_index('ix_loans_coverage', table_name='loans')
    for column in ('reminded_count', 'reminded_version', 'reminded_on', 'inputs_version',
                   'covered_through'):
        op.drop_column('loans', column)
