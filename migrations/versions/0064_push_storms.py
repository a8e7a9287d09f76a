"""push storms: the push services' answer windows, and suspect subscriptions

``push_hosts``: per push service (endpoint origin) a sliding window of answers and gone
(404/410) answers, its baseline share of gone and its storm state. ``subscriptions``: a
subscription held during a storm (``suspect_since``, ``suspect_host``) instead of expired.

Revision ID: 0064
Revises: 0063
Create Date: 2026-12-07 04:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0064'
down_revision: Union[str, Sequence[str], None] = '0063'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'push_hosts',
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answers', sa.Integer(), nullable=False),
        sa.Column('gone', sa.Integer(), nullable=False),
        sa.Column('previous_answers', sa.Integer(), nullable=False),
        sa.Column('previous_gone', sa.Integer(), nullable=False),
        sa.Column('baseline', sa.Float(), nullable=True),
        sa.Column('storm_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('storm_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('host'),
    )
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('suspect_since', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('suspect_host', sa.String(length=255), nullable=True))
    where = sa.text('suspect_host IS NOT NULL')
    op.create_index('ix_subscriptions_suspect_host', 'subscriptions', ['suspect_host'],
                    postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_subscriptions_suspect_host', table_name='subscriptions')
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('suspect_host')
        batch.drop_column('suspect_since')
    op.drop_table('push_hosts')
