"""onsite: on-site messages, their impressions, visitor tags and the shop's daily cap

``onsite_messages``: a shop's messages (rule and content as JSON); ``onsite_impressions``: each
showing to a visitor, the coupon code it gave, the close, click or reply, and its A/B variant; ``visitor_tags``:
the tags quick replies set, which campaign segments select by. ``shops.onsite_daily_cap``: at
most this many on-site messages to one visitor a day.

Revision ID: 0067
Revises: 0066
Create Date: 2026-12-07 14:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0067'
down_revision: Union[str, Sequence[str], None] = '0066'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('shops', sa.Column('onsite_daily_cap', sa.Integer(), server_default='2', nullable=False))
    op.create_table(
        'onsite_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rule', JSON, nullable=False),
        sa.Column('content', JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_onsite_messages_shop_status', 'onsite_messages', ['shop_id', 'status'])
    op.create_table(
        'onsite_impressions',
        sa.Column('id', BIG, nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('visitor_id', BIG, nullable=True),
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=True),
        sa.Column('code_id', BIG, nullable=True),
        sa.Column('shown_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reply_tag', sa.String(length=64), nullable=True),
        sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('experiment_id', sa.Integer(), nullable=True),
        sa.Column('variant', sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_id'], ['onsite_messages.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['code_id'], ['coupon_codes.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
    )
    op.create_index('ix_onsite_impressions_visitor_shown', 'onsite_impressions', ['visitor_id', 'shown_at'])
    op.create_index('ix_onsite_impressions_message', 'onsite_impressions', ['message_id', 'shown_at'])
    op.create_index(op.f('ix_onsite_impressions_experiment_id'), 'onsite_impressions', ['experiment_id'])
    op.create_table(
        'visitor_tags',
        sa.Column('id', BIG, nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('visitor_id', BIG, nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('visitor_id', 'tag'),
    )
    op.create_index('ix_visitor_tags_shop_tag', 'visitor_tags', ['shop_id', 'tag'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_visitor_tags_shop_tag', table_name='visitor_tags')
    op.drop_table('visitor_tags')
    op.drop_index(op.f('ix_onsite_impressions_experiment_id'), table_name='onsite_impressions')
    op.drop_index('ix_onsite_impressions_message', table_name='onsite_impressions')
    op.drop_index('ix_onsite_impressions_visitor_shown', table_name='onsite_impressions')
    op.drop_table('onsite_impressions')
    op.drop_index('ix_onsite_messages_shop_status', table_name='onsite_messages')
    op.drop_table('onsite_messages')
    op.drop_column('shops', 'onsite_daily_cap')
