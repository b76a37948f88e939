"""a notice remembers the front end it was sent from (chat, web, cli)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

The desk sends notices through the same service as the chat; the audit names the channel
for every other act, and now for notices too. Earlier notices came from the chat.
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('broadcasts') as batch:
        batch.add_column(sa.Column(
            'channel', sa.String(length=8), nullable=False, server_default='chat',
            comment="where it was sent from: chat | web | cli (as in the cases' audit)"))


def downgrade() -> None:
    with op.batch_alter_table('broadcasts') as batch:
        batch.drop_column('channel')
