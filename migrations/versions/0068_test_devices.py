"""test devices: browsers the merchant subscribed from the dashboard for test pushes

``test_devices``: one row per device, naming its subscription (status ``test``, owned by a
visitor of its own) and the name the merchant gave it.

Revision ID: 0068
Revises: 0067
Create Date: 2026-12-07 14:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0068'
down_revision: Union[str, Sequence[str], None] = '0067'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'test_devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscription_id'),
    )
    op.create_index('ix_test_devices_shop_id', 'test_devices', ['shop_id'])

def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_test_devices_shop_id', table_name='test_devices')
    op.drop_table('test_devices')
