"""an outbox row's facts, for the template of its kind of notice

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

`facts` holds what a notice is about (its kind of notice, what, amount in fen, due date, a
phrase), so that outside the 48-hour window the dispatcher fills the kind's template
fields from them (conversations/templates.toml). Rows written before have none and go with
the template their outbox kind is served by, filled from their text, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox', sa.Column(
        'facts', sa.JSON(), nullable=True,
        comment="what the notice is about, for its kind's template: notice, what, amount "
                "(fen), due, phrase, detail, name"))


def downgrade() -> None:
    op.drop_column('outbox', 'facts')
