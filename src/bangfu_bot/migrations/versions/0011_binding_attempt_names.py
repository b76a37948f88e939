"""the name each binding try was made against, so five misses lock that name

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

Older tries have no name: they count against their WeChat user only, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD_COMMENT = 'Every binding try; five failures in an hour lock binding for that openid'
NEW_COMMENT = ('Every binding try; five failures in an hour lock binding for that openid, '
               'and five against one name lock that name')


def upgrade() -> None:
    op.add_column('binding_attempts', sa.Column(
        'name', sa.String(length=40), nullable=True,
        comment="the name tried; empty when the try was refused by that name's lock"))
    op.create_index('ix_binding_attempts_name', 'binding_attempts', ['name'])
    if op.get_context().dialect.supports_comments:
        op.create_table_comment('binding_attempts', NEW_COMMENT, existing_comment=OLD_COMMENT)


def downgrade() -> None:
    if op.get_context().dialect.supports_comments:
        op.create_table_comment('binding_attempts', OLD_COMMENT, existing_comment=NEW_COMMENT)
    op.drop_index('ix_binding_attempts_name', table_name='binding_attempts')
    with op.batch_alter_table('binding_attempts', schema=None) as batch_op:
        batch_op.drop_column('name')
