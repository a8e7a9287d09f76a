"""content: coupon sources and codes, action buttons, per-locale texts, clicked action

Revision ID: 0040
Revises: 0030
Create Date: 2026-12-10 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision: str = '0040'
down_revision: Union[str, Sequence[str], None] = '0030'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('preset_settings', sa.Column('actions', _json(), nullable=True))
    op.add_column('preset_settings', sa.Column('locales', _json(), nullable=True))
    op.add_column('pushes', sa.Column('actions', _json(), nullable=True))
    op.add_column('clicks', sa.Column('action', sa.SmallInteger(), nullable=True))
    op.create_table(
        'coupon_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('shop_id', 'kind'),
    )
    op.create_table(
        'coupon_codes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('push_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['push_id'], ['pushes.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('shop_id', 'kind', 'code'),
    )
    op.create_index('ix_coupon_codes_free', 'coupon_codes', ['shop_id', 'kind', 'assigned_at', 'id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_coupon_codes_free', table_name='coupon_codes')
    op.drop_table('coupon_codes')
    op.drop_table('coupon_sources')
    with op.batch_alter_table('clicks') as batch:
        batch.drop_column('action')
    with op.batch_alter_table('pushes') as batch:
        batch.drop_column('actions')
    with op.batch_alter_table('preset_settings') as batch:
        batch.drop_column('locales')
        batch.drop_column('actions')
