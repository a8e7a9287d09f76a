"""unclicked streak: each subscription's sent pushes since its latest click, kept by triggers

``subscriptions.unclicked_streak`` (``server.core.streaks``), its triggers on pushes, and a
backfill of every subscription from the pushes already there. The engagement guardrail and the
send-time policy's pause read it instead of ranking the pushes.

Revision ID: 0070
Revises: 0069
Create Date: 2026-12-07 17:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from server.core import streaks

# revision identifiers, used by Alembic.
revision: str = '0070'
down_revision: Union[str, Sequence[str], None] = '0069'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('subscriptions', sa.Column('unclicked_streak', sa.Integer(), server_default='0', nullable=False))
    connection = op.get_bind()
    # The triggers first, then the backfill: on PostgreSQL, in one transaction, CREATE TRIGGER
    # makes the pushes' writers wait until the commit, so a push written before it is in the
    # backfill's snapshot and one written after it goes through the triggers (a backfill first
    # would miss a send committed between the two). On SQLite, at a quiet moment.
    for statement in streaks.trigger_sql(connection.dialect.name):
        op.execute(statement)
    streaks.rebuild(connection)


def downgrade() -> None:
    """Downgrade schema."""
    for statement in streaks.drop_sql(op.get_bind().dialect.name):
        op.execute(statement)
    # Dropped in place (SQLite 3.35+ too): a batch would copy the table anew, and with it drop the
    # rollups' triggers on subscriptions.
    op.drop_column('subscriptions', 'unclicked_streak')
