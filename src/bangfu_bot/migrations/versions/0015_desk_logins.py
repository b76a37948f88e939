"""the desk's logins: QR scenes, six-digit codes, server-side sessions, the cookie key

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

desk_logins: one row per login page's QR code (login:<scene>), scanned once by a bound
official through the bot and claimed once by the page. desk_codes: the 登录 fallback for
subscription accounts (five minutes, five tries). desk_sessions: every desk session, so that
logging out, unbinding, a lost role or 30 idle minutes end it on the server. desk_keys: the
Fernet key of the desk's cookies, made once and shared by every process.

After 0014 (the sandbox clock).
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'desk_logins',
        sa.Column('scene', sa.String(length=32), nullable=False,
                  comment='the random part of login:<scene>'),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False,
                  comment="the QR code's end (5 minutes)"),
        sa.Column('person_id', ID, nullable=True, comment='who scanned it (set once, by the bot)'),
        sa.Column('binding_id', ID, nullable=True),
        sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True,
                  comment='when the waiting page turned it into a session (once)'),
        sa.ForeignKeyConstraint(['binding_id'], ['bindings.id']),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.PrimaryKeyConstraint('scene'),
        comment='Desk login QR scenes: one page, one scan, one session',
    )
    op.create_table(
        'desk_codes',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('person_id', ID, nullable=False),
        sa.Column('binding_id', ID, nullable=False),
        sa.Column('code', sa.String(length=6), nullable=False,
                  comment='six digits, sent only to the person'),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False, comment='wrong codes typed against it'),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True,
                  comment='five wrong tries, or a newer code'),
        sa.ForeignKeyConstraint(['binding_id'], ['bindings.id']),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        comment='Desk login codes (登录) for accounts without parametric QR codes',
    )
    op.create_index('ix_desk_codes_person_id', 'desk_codes', ['person_id'])
    op.create_table(
        'desk_sessions',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False,
                  comment="SHA-256 of the cookie's session token (the token itself is not kept)"),
        sa.Column('person_id', ID, nullable=False),
        sa.Column('binding_id', ID, nullable=False,
                  comment='the WeChat binding that logged in: the session ends with it'),
        sa.Column('csrf', sa.String(length=64), nullable=False,
                  comment='the token every form posts back'),
        sa.Column('via', sa.String(length=8), nullable=False, comment='qrcode | code'),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=16), nullable=True,
                  comment='logout | idle | unbound | role'),
        sa.ForeignKeyConstraint(['binding_id'], ['bindings.id']),
        sa.ForeignKeyConstraint(['person_id'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
        comment='Desk sessions, server side: logging out ends every session of the person',
    )
    op.create_index('ix_desk_sessions_person_id', 'desk_sessions', ['person_id'])
    op.create_table(
        'desk_keys',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.String(length=100), nullable=False, comment='a Fernet key, made once'),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
        comment="The key the desk's cookies are encrypted with, shared by every process",
    )


def downgrade() -> None:
    op.drop_table('desk_keys')
    op.drop_index('ix_desk_sessions_person_id', table_name='desk_sessions')
    op.drop_table('desk_sessions')
    op.drop_index('ix_desk_codes_person_id', table_name='desk_codes')
    op.drop_table('desk_codes')
    op.drop_table('desk_logins')
