"""rosters uploaded on the desk, kept as checked until the department confirms them

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

roster_uploads: one row per roster file uploaded on the desk's 名册 page, with the bytes,
their SHA-256 and what the check found (every rejected line); the confirm imports exactly
these bytes, once, and records when and what it did.
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'roster_uploads',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('person_id', ID, nullable=False, comment='who uploaded it'),
        sa.Column('filename', sa.String(length=200), nullable=False,
                  comment='the name the browser sent'),
        sa.Column('sha256', sa.String(length=64), nullable=False, comment='of the bytes below'),
        sa.Column('data', sa.LargeBinary(), nullable=False,
                  comment='the file as checked: the confirm imports exactly these bytes'),
        sa.Column('row_count', sa.Integer(), nullable=False),
        sa.Column('valid_count', sa.Integer(), nullable=False),
        sa.Column('new_count', sa.Integer(), nullable=False,
                  comment='valid rows of people not yet on the roster'),
        sa.Column('rejected', sa.JSON(), nullable=False,
                  comment='[[line, reason], ...] as the check found'),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True,
                  comment='confirmed and imported (once)'),
        sa.Column('skipped_invalid', sa.Integer(), nullable=True,
                  comment='rows left out at the import'),
        sa.Column('result', sa.String(length=300), nullable=True,
                  comment="the importer's summary line"),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        comment='Rosters uploaded on the desk (名册), checked before anything is written',
    )


def downgrade() -> None:
    op.drop_table('roster_uploads')
