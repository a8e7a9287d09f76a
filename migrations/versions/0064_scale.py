"""scale: the expiry sweep's cursor

``sweep_cursors``: where a sweep that walks a table a slice per pass goes on next (the idle
subscription expiry, ``planning.expiry``).

Revision ID: 0064
Revises: 0060
Create Date: 2026-12-07 04:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0064'
down_revision: Union[str, Sequence[str], None] = '0060'
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

def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('sweep_cursors')
