"""inbound messages, tokens, users, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False, comment='MsgId, or FromUserName|CreateTime|Event|EventKey for events'),
    sa.Column('openid', sa.String(length=64), nullable=False, comment='the sender'),
    sa.Column('msg_type', sa.String(length=32), nullable=False, comment='text, image, event, ...'),
    sa.Column('event', sa.String(length=64), nullable=True, comment='event name, lower case'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, comment="the platform's CreateTime"),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False, comment='when we first handled it'),
    sa.Column('payload', sa.Text(), nullable=False, comment='the decrypted push XML'),
    sa.Column('outcome', sa.String(length=16), nullable=False, comment='replied | no_reply | failed'),
    sa.Column('reply_text', sa.Text(), nullable=True, comment='the answer; retries get it again'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_inbound_messages_dedupe_key')),
    comment='Every push handled, exactly once, in the transaction of its effects'
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_openid'), ['openid'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False, comment='one row per intent; a second write of the same intent is ignored'),
    sa.Column('openid', sa.String(length=64), nullable=False, comment='recipient'),
    sa.Column('kind', sa.String(length=32), nullable=False, comment='late_reply, reminder, notice, ...'),
    sa.Column('content', sa.Text(), nullable=False, comment='the text to send'),
    sa.Column('reason', sa.String(length=200), nullable=False, comment='why this is sent, for operators'),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='pending | sent | undeliverable | failed'),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_errcode', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_idempotency_key')),
    comment='Messages to send, written in the transaction that caused them'
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_openid'), ['openid'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('wechat_tokens',
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('appid', name=op.f('pk_wechat_tokens')),
    comment='The access token shared by every process of one account'
    )
    op.create_table('wechat_users',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('subscribed', sa.Boolean(), nullable=False, comment='follows the account now'),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('subscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True, comment='last message the user wrote: opens the 48 h customer-service window'),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=True, comment='last click, follow or scan: opens a 1-minute window'),
    sa.PrimaryKeyConstraint('openid', name=op.f('pk_wechat_users')),
    comment='Everyone who has written to or followed the account'
    )
    op.create_table('outbox_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False, comment='custom | template | mass'),
    sa.Column('errcode', sa.Integer(), nullable=False, comment='0 = accepted by WeChat'),
    sa.Column('errmsg', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_outbox_attempts_outbox_id_outbox')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_attempts')),
    comment='Every attempt to send an outbox row and what WeChat answered'
    )
    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_attempts_outbox_id'), ['outbox_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_attempts_outbox_id'))

    op.drop_table('outbox_attempts')
    op.drop_table('wechat_users')
    op.drop_table('wechat_tokens')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_openid'))

    op.drop_table('outbox')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_openid'))

    op.drop_table('inbound_messages')
