"""a broadcast's send plan: the tag it went by, when that was decided, and when it may go

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

CHANNEL = ('mass (by openid list) | tag (by our WeChat tag) | outbox (customer-service, '
           'template...); mass and tag count toward 4 a month')


def upgrade() -> None:
    op.add_column('broadcasts', sa.Column(
        'tag_id', sa.Integer(), nullable=True,
        comment="the WeChat tag its mass send went by; recipients by it have channel 'tag'"))
    op.add_column('broadcasts', sa.Column(
        'planned_at', sa.DateTime(timezone=True), nullable=True,
        comment='when tag or openid lists were chosen; a send taken up after a crash keeps it'))
    op.add_column('broadcasts', sa.Column(
        'not_before', sa.DateTime(timezone=True), nullable=True,
        comment="a notice refused for the day's mass quota (45028) waits until then"))
    if op.get_context().dialect.name == 'postgresql':  # SQLite keeps no comments
        op.alter_column('broadcast_recipients', 'channel', existing_type=sa.String(16),
                        existing_nullable=False, comment=CHANNEL)


def downgrade() -> None:
    op.drop_column('broadcasts', 'not_before')
    if op.get_context().dialect.name == 'postgresql':
        op.alter_column('broadcast_recipients', 'channel', existing_type=sa.String(16),
                        existing_nullable=False,
                        comment='mass (counts toward 4 a month) | outbox (customer-service, '
                                'template...)')
    op.drop_column('broadcasts', 'planned_at')
    op.drop_column('broadcasts', 'tag_id')
