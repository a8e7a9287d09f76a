"""campaigns: a merchant's push to a segment, sent now, at a time, or at a local time

Revision ID: 0030
Revises: 0020
Create Date: 2026-12-02 15:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0030'
down_revision: Union[str, Sequence[str], None] = '0020'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'campaigns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('icon', sa.Text(), nullable=False),
        sa.Column('image', sa.Text(), nullable=False),
        sa.Column('segment', JSON, nullable=False),
        sa.Column('send_mode', sa.String(length=8), nullable=False),
        sa.Column('send_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('local_time', sa.String(length=5), nullable=True),
        sa.Column('rate_per_minute', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('plan_after', sa.DateTime(timezone=True), nullable=True),
        sa.Column('audience_max_id', sa.BigInteger(), nullable=True),
        sa.Column('plan_cursor', sa.BigInteger(), nullable=False),
        sa.Column('slots', JSON, nullable=True),
        sa.Column('targeted', sa.Integer(), nullable=True),
        sa.Column('planned', sa.Integer(), nullable=False),
        sa.Column('planned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,  # ids never reused: a deleted campaign's pushes keep its keys
    )
    op.create_index('ix_campaigns_shop_id', 'campaigns', ['shop_id'], unique=False)
    op.create_index('ix_campaigns_status_plan_after', 'campaigns', ['status', 'plan_after'], unique=False)
    op.create_index('ix_subscriptions_shop_id_id', 'subscriptions', ['shop_id', 'id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_subscriptions_shop_id_id', table_name='subscriptions')
    op.drop_index('ix_campaigns_status_plan_after', table_name='campaigns')
    op.drop_index('ix_campaigns_shop_id', table_name='campaigns')
    op.drop_table('campaigns')
