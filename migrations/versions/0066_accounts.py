"""accounts: staff users, revocable dashboard sessions, invitations, the audit log

``users``: a shop's staff accounts (e-mail unique over the instance, an argon2 password hash,
a role). ``dashboard_sessions``: one row per dashboard log-in (the SHA-256 of the cookie's random
id; no user for a log-in with the admin token). ``invitations``: single-use links, token kept
hashed. ``audit_log``: who changed which setting, preset or team member, before and after.

Revision ID: 0066
Revises: 0065
Create Date: 2026-12-07 14:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0066'
down_revision: Union[str, Sequence[str], None] = '0065'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('email'),
    )
    op.create_index('ix_users_shop_id', 'users', ['shop_id'])
    op.create_table(
        'dashboard_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('id_hash'),
    )
    op.create_index('ix_dashboard_sessions_shop_user', 'dashboard_sessions', ['shop_id', 'user_id'])
    op.create_table(
        'invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('invited_by', sa.String(length=254), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_invitations_shop', 'invitations', ['shop_id', 'accepted_at', 'revoked_at'])
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=254), nullable=False),
        sa.Column('area', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=120), nullable=False),
        sa.Column('before', sa.Text(), nullable=True),
        sa.Column('after', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_log_shop_at', 'audit_log', ['shop_id', 'at', 'id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_audit_log_shop_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_invitations_shop', table_name='invitations')
    op.drop_table('invitations')
    op.drop_index('ix_dashboard_sessions_shop_user', table_name='dashboard_sessions')
    op.drop_table('dashboard_sessions')
    op.drop_index('ix_users_shop_id', table_name='users')
    op.drop_table('users')
