"""an outbox row's mark that its call to WeChat is starting

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08

`calling_at` is committed just before a claimed row's call starts, so a row left "sending"
by a killed process tells whether its call may have reached WeChat. Rows in flight at the
upgrade were claimed without it: they are marked as if their call had started, which is
what the dispatcher assumed of them until now.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

CHANNEL = ('custom | template | escalated: the call under way, then how it went; escalated on '
           'an unknown row: a secretary was asked to make sure')


def upgrade() -> None:
    op.add_column('outbox', sa.Column(
        'calling_at', sa.DateTime(timezone=True), nullable=True,
        comment="committed just before this channel's call starts; NULL on a claimed row: "
                "its call never started"))
    op.execute("UPDATE outbox SET calling_at = next_attempt_at WHERE status = 'sending'")
    if op.get_context().dialect.name == 'postgresql':  # SQLite keeps no comments
        op.alter_column('outbox', 'channel', existing_type=sa.String(16),
                        existing_nullable=True, comment=CHANNEL)


def downgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        op.alter_column('outbox', 'channel', existing_type=sa.String(16),
                        existing_nullable=True,
                        comment='custom | template | escalated: how it finally went')
    op.drop_column('outbox', 'calling_at')
