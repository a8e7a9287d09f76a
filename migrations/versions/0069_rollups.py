"""rollups: daily stats, visitor-days and visitor summaries kept by triggers

``stat_days``, ``visitor_days``, ``visitor_products``, ``visitor_pages`` and ``visitor_summaries``
(``server.core.rollups``), their triggers on pushes, clicks, orders, subscriptions, visitors,
events and checkouts, and a backfill of every shop's existing rows.

Revision ID: 0069
Revises: 0068
Create Date: 2026-12-07 14:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from server.core import rollups

# revision identifiers, used by Alembic.
revision: str = '0069'
down_revision: Union[str, Sequence[str], None] = '0068'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default='0', nullable=False)


def _small(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), server_default='0', nullable=False)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'stat_days',
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        *(_count(name) for name in ('sent', 'unique_clicks', 'failed', 'clicks', 'clicks_a1', 'clicks_a2',
                                    'orders', 'gmv_cents', 'new_subs', 'subs_opened', 'subs_closed')),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_stat_days_shop_id_shops'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('shop_id', 'day', 'kind', name=op.f('pk_stat_days')),
    )
    op.create_table(
        'visitor_days',
        sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        *(_small(name) for name in ('first_seen', 'events', 'shopping', 'checkouts', 'paid')),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_visitor_days_shop_id_shops'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_visitor_days_visitor_id_visitors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('visitor_id', 'day', name=op.f('pk_visitor_days')),
    )
    op.create_index('ix_visitor_days_shop_day', 'visitor_days', ['shop_id', 'day'])
    op.create_table(
        'visitor_products',
        sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('product_ref', sa.String(length=128), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('last_viewed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_visitor_products_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_visitor_products_visitor_id_visitors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('visitor_id', 'product_ref', name=op.f('pk_visitor_products')),
    )
    op.create_table(
        'visitor_pages',
        sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('page', sa.String(length=800), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('last_viewed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_visitor_pages_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_visitor_pages_visitor_id_visitors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('visitor_id', 'page', name=op.f('pk_visitor_pages')),
    )
    op.create_index('ix_visitor_pages_shop_viewed', 'visitor_pages', ['shop_id', 'last_viewed_at'])
    op.create_table(
        'visitor_summaries',
        sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('last_carted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_visitor_summaries_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_visitor_summaries_visitor_id_visitors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('visitor_id', name=op.f('pk_visitor_summaries')),
    )
    connection = op.get_bind()
    # Backfill first, then the triggers: in one transaction on PostgreSQL (writers wait on the
    # source tables' locks taken by CREATE TRIGGER), at a quiet moment on SQLite.
    # As they were at this revision: without the funnel's table and triggers (0072 adds them).
    rollups.rebuild(connection, funnel=False)
    for statement in rollups.trigger_sql(connection.dialect.name, funnel=False):
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    for statement in rollups.drop_sql(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('visitor_summaries')
    op.drop_index('ix_visitor_pages_shop_viewed', table_name='visitor_pages')
    op.drop_table('visitor_pages')
    op.drop_table('visitor_products')
    op.drop_index('ix_visitor_days_shop_day', table_name='visitor_days')
    op.drop_table('visitor_days')
    op.drop_table('stat_days')
