"""each to-do's key, unique: writing a to-do again is a no-op

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09

`todos.key` names the one to-do (notify.intents): the event that calls for it and whom it
is for. Until now the key only named the to-do's push (outbox `todo:<key>:<openid>`) and was
not stored. Existing rows get `legacy:<id>`, except the guarantor calls: the reminder scan
now asks whether an instalment's guarantor was called by key (`loan:<loan>:<n>:guarantor:
<staff>`), not by the 「（第N期）」 its to-do's text ended with, so those rows get the key
the scan wrote them with, worked out from that text (one that does not parse, or whose key
is taken, keeps `legacy:<id>`).

SQLite cannot make a column NOT NULL or drop a default without rebuilding the table, and
rebuilding `todos` inside the migration's transaction fails as soon as a `visit_sends` row
points at it (foreign keys are on); so on SQLite the column is added NOT NULL with an empty
default, which stays (every writer gives a key; a second row without one would break the
unique index). PostgreSQL drops the default once every row has its key.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

COMMENT = ('names the one to-do: the event that calls for it and whom it is for; a second '
           'write of it is ignored (legacy:<id> before 0013)')
INSTALMENT = re.compile(r'（第(\d+)期）\s*$')


def upgrade() -> None:
    op.add_column('todos', sa.Column('key', sa.String(length=200), nullable=False,
                                     server_default='', comment=COMMENT))
    bind = op.get_bind()
    todos = sa.table('todos', sa.column('id', sa.Integer()), sa.column('key', sa.String()))
    calls = bind.execute(sa.text(
        "SELECT id, assignee_id, loan_id, text FROM todos "
        "WHERE kind = 'guarantor_call' AND loan_id IS NOT NULL ORDER BY id")).all()
    keys, taken = [], set()
    for row in calls:
        found = INSTALMENT.search(row.text)
        if found is None:
            continue
        key = f'loan:{row.loan_id}:{int(found.group(1))}:guarantor:{row.assignee_id}'
        if key not in taken:
            taken.add(key)
            keys.append({'b_id': row.id, 'b_key': key})
    if keys:
        bind.execute(todos.update().where(todos.c.id == sa.bindparam('b_id'))
                     .values(key=sa.bindparam('b_key')), keys)
    op.execute("""UPDATE todos SET "key" = 'legacy:' || CAST(id AS VARCHAR(20))"""
               """ WHERE "key" = ''""")
    if op.get_context().dialect.name == 'postgresql':
        op.alter_column('todos', 'key', existing_type=sa.String(length=200),
                        existing_nullable=False, server_default=None)
    op.create_index('ix_todos_key', 'todos', ['key'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_todos_key', table_name='todos')
    op.drop_column('todos', 'key')
