"""pushes' shop sends: the guardrail's first hours of its 7 days

``ix_pushes_shop_sent`` (``shop_id``, ``sent_at``, ``kind``) on sent rows only: the guardrail's
sends of the last 7 days read the whole UTC days from ``stat_days`` and the hours before the
first of them from this index (``reports.guardrails``), instead of every sent push of the shop.

Revision ID: 0071
Revises: 0070
Create Date: 2026-12-07 18:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0071'
down_revision: Union[str, Sequence[str], None] = '0070'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    sent = sa.text("status = 'sent'")
    op.create_index('ix_pushes_shop_sent', 'pushes', ['shop_id', 'sent_at', 'kind'],
                    postgresql_where=sent, sqlite_where=sent)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_pushes_shop_sent', table_name='pushes')
