"""funnel days: the funnel's counts per day and gap, kept by triggers on the visitor-days

``funnel_days`` (``server.core.rollups``), the visitor-days' ``subscribed`` counter and the gaps
each day counts with, the triggers that keep them, and a backfill from the visitor-days and
subscriptions already there.

Revision ID: 0072
Revises: 0071
Create Date: 2026-12-07 17:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from server.core import rollups

# revision identifiers, used by Alembic.
revision: str = '0072'
down_revision: Union[str, Sequence[str], None] = '0071'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    connection = op.get_bind()
    dialect = connection.dialect.name
    for statement in rollups.drop_sql(dialect):
        op.execute(statement)
    with op.batch_alter_table('visitor_days') as batch:
        batch.add_column(sa.Column('subscribed', sa.Integer(), server_default='0', nullable=False))
        for name in rollups.GAP_COLUMNS:
            batch.add_column(sa.Column(name, sa.SmallInteger(), nullable=True))
    op.create_table(
        'funnel_days',
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=1), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('prev_gap', sa.SmallInteger(), nullable=False),
        sa.Column('next_gap', sa.SmallInteger(), nullable=False),
        sa.Column('n', sa.BigInteger(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_funnel_days_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('shop_id', 'stage', 'day', 'prev_gap', 'next_gap', name=op.f('pk_funnel_days')),
    )
    # The subscriptions' days, then the funnel from the visitor-days, then the triggers: in one
    # transaction on PostgreSQL, at a quiet moment on SQLite.
    for part in rollups.PARTS:
        if part.funnel:
            connection.exec_driver_sql(rollups.add_rows(part, f"(SELECT * FROM {part.source})", dialect))
    rollups.rebuild_funnel(connection)
    for statement in rollups.trigger_sql(dialect):
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    dialect = op.get_bind().dialect.name
    for statement in rollups.drop_sql(dialect):
        op.execute(statement)
    op.drop_table('funnel_days')
    with op.batch_alter_table('visitor_days') as batch:
        for name in ('subscribed', *rollups.GAP_COLUMNS):
            batch.drop_column(name)
    for statement in rollups.trigger_sql(dialect, funnel=False):
        op.execute(statement)
