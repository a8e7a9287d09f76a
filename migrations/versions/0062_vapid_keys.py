"""vapid keys: a shop's own VAPID key pairs, and the key each subscription was made with

A subscription's vapid_key_id NULL is the instance key (VAPID_PRIVATE_KEY_FILE), so existing
rows keep working without reading the key file here.

Revision ID: 0062
Revises: 0060
Create Date: 2026-12-07 04:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0062'
down_revision: Union[str, Sequence[str], None] = '0060'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'vapid_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('public_key', sa.String(length=100), nullable=False),
        sa.Column('private_key_pem', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_vapid_keys_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_vapid_keys')),
    )
    op.create_index(op.f('ix_vapid_keys_shop_id'), 'vapid_keys', ['shop_id'])
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('vapid_key_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_subscriptions_vapid_key_id'), ['vapid_key_id'])
        batch.create_foreign_key(batch.f('fk_subscriptions_vapid_key_id_vapid_keys'), 'vapid_keys',
                                 ['vapid_key_id'], ['id'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_constraint(batch.f('fk_subscriptions_vapid_key_id_vapid_keys'), type_='foreignkey')
        batch.drop_index(batch.f('ix_subscriptions_vapid_key_id'))
        batch.drop_column('vapid_key_id')
    op.drop_index(op.f('ix_vapid_keys_shop_id'), table_name='vapid_keys')
    op.drop_table('vapid_keys')
