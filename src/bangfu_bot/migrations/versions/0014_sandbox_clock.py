"""the sandbox clock's offset, so that it survives a restart

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

One row (id 1): how far the sandbox clock is ahead of real time. Written each time the
sandbox page moves the clock; read when the bot starts in sandbox mode. A production bot
never writes it.

After 0013 (the to-do keys).
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sandbox_clock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False,
                  comment='always 1: one clock'),
        sa.Column('offset_us', sa.BigInteger(), nullable=False,
                  comment='how far the sandbox clock is ahead of real time, in microseconds'),
        sa.Column('moved_at', sa.DateTime(timezone=True), nullable=False,
                  comment='real time of the last move'),
        sa.PrimaryKeyConstraint('id'),
        comment="The sandbox clock's offset from real time (sandbox mode only)",
    )


def downgrade() -> None:
    op.drop_table('sandbox_clock')
