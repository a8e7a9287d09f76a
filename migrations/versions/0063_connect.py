"""connect: secret rotation, connect tokens, refused origins and webhook status per shop

Shops keep the previous webhook secret with its end of grace, and the hash of one open connect
token with its expiry. refused_origins keeps the last origins the collect API refused per shop;
webhook_status the last delivery accepted and refused per shop and source.

Revision ID: 0063
Revises: 0062
Create Date: 2026-12-07 04:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0063'
down_revision: Union[str, Sequence[str], None] = '0062'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('shops') as batch:
        batch.add_column(sa.Column('previous_secret', sa.String(128), nullable=True))
        batch.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('connect_token_hash', sa.String(64), nullable=True))
        batch.add_column(sa.Column('connect_token_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'refused_origins',
        sa.Column('id', BigId, nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('origin', sa.String(255), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_refused_origins_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_origins')),
        sa.UniqueConstraint('shop_id', 'origin', name=op.f('uq_refused_origins_shop_id_origin')),
    )
    op.create_table(
        'webhook_status',
        sa.Column('id', BigId, nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('last_delivery_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_failure_code', sa.String(64), nullable=True),
        sa.Column('last_failure', sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_webhook_status_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_status')),
        sa.UniqueConstraint('shop_id', 'source', name=op.f('uq_webhook_status_shop_id_source')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('webhook_status')
    op.drop_table('refused_origins')
    with op.batch_alter_table('shops') as batch:
        batch.drop_column('connect_token_until')
        batch.drop_column('connect_token_hash')
        batch.drop_column('previous_secret_until')
        batch.drop_column('previous_secret')
