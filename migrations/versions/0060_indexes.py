"""indexes: the visitors' ones an event's update leaves alone; the claim's order in the pushes one

Visitors: no last_event_at, partial, no shop_id alone. Pushes: (status, due_at, id), the
claim's ORDER BY, so a claim no longer sorts every row due at the same time.

Revision ID: 0060
Revises: 0040
Create Date: 2026-12-02 17:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0060'
down_revision: Union[str, Sequence[str], None] = '0040'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _partial(column: str) -> dict:
    where = sa.text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index('ix_visitors_engaged_last_event', table_name='visitors')
    op.drop_index('ix_visitors_shop_id', table_name='visitors')
    op.drop_index('ix_visitors_email', table_name='visitors')
    op.drop_index('ix_visitors_shop_cart_token', table_name='visitors')
    op.create_index('ix_visitors_engaged', 'visitors', ['engaged_since'], **_partial('engaged_since'))
    op.create_index('ix_visitors_email', 'visitors', ['email'], **_partial('email'))
    op.create_index('ix_visitors_shop_cart_token', 'visitors', ['shop_id', 'cart_token'], **_partial('cart_token'))
    op.drop_index('ix_pushes_status_due', table_name='pushes')
    op.create_index('ix_pushes_status_due', 'pushes', ['status', 'due_at', 'id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_pushes_status_due', table_name='pushes')
    op.create_index('ix_pushes_status_due', 'pushes', ['status', 'due_at'])
    op.drop_index('ix_visitors_shop_cart_token', table_name='visitors')
    op.drop_index('ix_visitors_email', table_name='visitors')
    op.drop_index('ix_visitors_engaged', table_name='visitors')
    op.create_index('ix_visitors_shop_cart_token', 'visitors', ['shop_id', 'cart_token'])
    op.create_index('ix_visitors_email', 'visitors', ['email'])
    op.create_index('ix_visitors_shop_id', 'visitors', ['shop_id'])
    op.create_index('ix_visitors_engaged_last_event', 'visitors', ['engaged_since', 'last_event_at'])
