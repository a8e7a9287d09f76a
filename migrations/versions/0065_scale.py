"""scale: the expiry sweep's cursor; the records' orders as indexes

``sweep_cursors``: where a sweep that walks a table a slice per pass goes on next (the idle
subscription expiry, ``planning.expiry``). ``ix_pushes_shop_due`` and
``ix_visitors_shop_first_seen``: the push and visitor records' orders (``merchant.records``), so
a page is a range of an index at any shop size.

Revision ID: 0065
Revises: 0064
Create Date: 2026-12-07 04:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0065'
down_revision: Union[str, Sequence[str], None] = '0064'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'sweep_cursors',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_index('ix_pushes_shop_due', 'pushes', ['shop_id', 'due_at', 'id'])
    op.create_index('ix_visitors_shop_first_seen', 'visitors', ['shop_id', 'first_seen_at', 'id'])

def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_visitors_shop_first_seen', table_name='visitors')
    op.drop_index('ix_pushes_shop_due', table_name='pushes')
    op.drop_table('sweep_cursors')
