"""alerts: visitors' interests (back in stock, price drop), the alert and guardrail settings

Revision ID: 0020
Revises: 0050
Create Date: 2026-12-02 15:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0020'
down_revision: Union[str, Sequence[str], None] = '0050'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_min_drop_percent', sa.Integer(), server_default='10', nullable=False))
        batch_op.add_column(sa.Column('alert_window_days', sa.Integer(), server_default='7', nullable=False))
        batch_op.add_column(sa.Column('pause_unengaged_after', sa.Integer(), server_default='0', nullable=False))

    op.create_table('interests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_ref', sa.String(length=128), nullable=False),
    sa.Column('variant_ref', sa.String(length=128), server_default='', nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('seen_price', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_interests_shop_id_shops'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_interests_visitor_id_visitors'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interests')),
    sa.UniqueConstraint('shop_id', 'visitor_id', 'product_ref', 'variant_ref', 'kind',
                        name=op.f('uq_interests_shop_id_visitor_id_product_ref_variant_ref_kind'))
    )
    with op.batch_alter_table('interests', schema=None) as batch_op:
        batch_op.create_index('ix_interests_shop_product', ['shop_id', 'product_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_interests_visitor_id'), ['visitor_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('interests')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('pause_unengaged_after')
        batch_op.drop_column('alert_window_days')
        batch_op.drop_column('alert_min_drop_percent')
