"""the ledger table's comment in the one spelling people read: 台账

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Every text now writes 台账; the table comment said 台帐. Comments exist only on PostgreSQL.
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table_comment(
            'ledger_entries', "困难党员台账: one entry per member per year",
            existing_comment="困难党员台帐: one entry per member per year")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table_comment(
            'ledger_entries', "困难党员台帐: one entry per member per year",
            existing_comment="困难党员台账: one entry per member per year")
