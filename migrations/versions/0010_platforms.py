"""platforms: shop platform settings, visitors' cart token, products

Revision ID: 0010
Revises: 0002
Create Date: 2026-12-02 14:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform', sa.String(length=16), server_default='custom', nullable=False))
        batch_op.add_column(sa.Column('platform_domain', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('platform_secret', sa.String(length=255), nullable=True))

    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cart_token', sa.String(length=128), nullable=True))
        batch_op.create_index('ix_visitors_shop_cart_token', ['shop_id', 'cart_token'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('product_ref', sa.String(length=128), nullable=False),
    sa.Column('variant_ref', sa.String(length=128), server_default='', nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('price', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('inventory', sa.Integer(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('image', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_products_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('shop_id', 'product_ref', 'variant_ref', name=op.f('uq_products_shop_id_product_ref_variant_ref'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('products')
    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.drop_index('ix_visitors_shop_cart_token')
        batch_op.drop_column('cart_token')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('platform_secret')
        batch_op.drop_column('platform_domain')
        batch_op.drop_column('platform')
