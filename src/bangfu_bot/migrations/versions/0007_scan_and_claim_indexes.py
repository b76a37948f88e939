"""indexes for the outbox claim and the reminder scan

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_due', 'outbox', ['status', sa.text('urgent DESC'), 'id'])
    op.create_index('ix_instalments_scan', 'instalments',
                    ['loan_id', 'due_on', 'principal_fen', 'interest_fen'])


def downgrade() -> None:
    op.drop_index('ix_instalments_scan', table_name='instalments')
    op.drop_index('ix_outbox_due', table_name='outbox')
