"""experiments and holdouts: A/B tests of preset texts, holdout slices for proof of lift

Revision ID: 0050
Revises: 0011
Create Date: 2026-12-10 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision: str = '0050'
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'experiments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('slice_percent', sa.Integer(), nullable=False),
        sa.Column('goal', sa.String(length=16), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('min_sends', sa.Integer(), nullable=False),
        sa.Column('auto_apply', sa.Boolean(), nullable=False),
        sa.Column('variants', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.Column('winner', sa.String(length=8), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_experiments_shop_kind_status', 'experiments', ['shop_id', 'kind', 'status'])
    op.create_table(
        'holdouts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('percent', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('shop_id', 'kind'),
    )
    op.add_column('pushes', sa.Column('experiment_id', sa.Integer(), nullable=True))
    op.add_column('pushes', sa.Column('variant', sa.String(length=8), nullable=True))
    op.create_index('ix_pushes_experiment_id', 'pushes', ['experiment_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_pushes_experiment_id', table_name='pushes')
    with op.batch_alter_table('pushes') as batch:
        batch.drop_column('variant')
        batch.drop_column('experiment_id')
    op.drop_table('holdouts')
    op.drop_index('ix_experiments_shop_kind_status', table_name='experiments')
    op.drop_table('experiments')
