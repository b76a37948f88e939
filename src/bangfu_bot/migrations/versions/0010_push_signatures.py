"""plain-mode push signatures seen, for refusing a captured URL reused with another body

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'push_signatures',
        sa.Column('signature', sa.String(length=40), nullable=False,
                  comment='sha1 of token, timestamp and nonce: one per push WeChat signs'),
        sa.Column('body_sha256', sa.String(length=64), nullable=False,
                  comment='the body it was first seen with'),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('signature'),
        comment='Plain-mode signatures seen within the clock-skew window',
    )
    op.create_index('ix_push_signatures_seen_at', 'push_signatures', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_push_signatures_seen_at', table_name='push_signatures')
    op.drop_table('push_signatures')
