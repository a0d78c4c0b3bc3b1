"""The initial schema: the tables ``create_all`` made before there were migrations.

Revision ID: 0001
Revises:
Create Date: 2026-12-06

Written by autogenerate, then tidied: plain SQL types (a migration must not change
when the models' Python types do), indexes after their tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A database that has all of these and no migration history was made by
# create_all: it is adopted as this revision (stb_origin.migrations).
TABLES = (
    "accounts",
    "assets",
    "content_keys",
    "key_audit",
    "oauth_clients",
    "packages",
    "signing_keys",
    "devices",
    "entitlements",
    "package_assets",
    "users",
    "oauth_device_authorizations",
    "oauth_grants",
    "oauth_access_tokens",
)


def upgrade() -> None:
    op.create_table('accounts',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('devices_changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )

    op.create_table('assets',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('error_message', sa.String(length=2000), nullable=True),
        sa.Column('duration_s', sa.Float(), nullable=True),
        sa.Column('source_key', sa.String(length=300), nullable=False),
        sa.Column('source_size', sa.Integer(), nullable=False),
        sa.Column('source', sa.JSON(), nullable=True),
        sa.Column('renditions', sa.JSON(), nullable=True),
        sa.Column('version', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_assets_status', 'assets', ['status'])

    op.create_table('content_keys',
        sa.Column('asset_id', sa.String(length=64), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('asset_id', 'key_id')
    )
    op.create_index('ix_content_keys_asset_id', 'content_keys', ['asset_id'])

    op.create_table('key_audit',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=True),
        sa.Column('device_id', sa.String(length=64), nullable=True),
        sa.Column('client_id', sa.String(length=128), nullable=True),
        sa.Column('asset_id', sa.String(length=32), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('client_address', sa.String(length=64), nullable=True),
        sa.Column('forwarded_for', sa.String(length=256), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_key_audit_asset_created', 'key_audit', ['asset_id', 'created_at'])
    op.create_index('ix_key_audit_created', 'key_audit', ['created_at', 'id'])
    op.create_index('ix_key_audit_device_created', 'key_audit', ['device_id', 'created_at'])

    op.create_table('oauth_clients',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('secret_hash', sa.String(length=200), nullable=True),
        sa.Column('scopes', sa.String(length=255), nullable=False),
        sa.Column('grant_types', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )

    op.create_table('packages',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name')
    )

    op.create_table('signing_keys',
        sa.Column('kid', sa.String(length=64), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('activates_at', sa.BigInteger(), nullable=False),
        sa.Column('retires_at', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('kid')
    )

    op.create_table('devices',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('serial', sa.String(length=64), nullable=False),
        sa.Column('model', sa.String(length=128), nullable=False),
        sa.Column('capabilities', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_devices_account_created', 'devices', ['account_id', 'created_at'])
    # One active device per serial in an account; revoked ones may repeat it.
    op.create_index('uq_devices_active_serial', 'devices', ['account_id', 'serial'], unique=True,
                    sqlite_where=sa.text("state = 'active'"),
                    postgresql_where=sa.text("state = 'active'"))

    op.create_table('entitlements',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('package_name', sa.String(length=64), nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.ForeignKeyConstraint(['package_name'], ['packages.name'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_entitlements_account_package', 'entitlements',
                    ['account_id', 'package_name'])

    op.create_table('package_assets',
        sa.Column('package_name', sa.String(length=64), nullable=False),
        sa.Column('asset_id', sa.String(length=32), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['package_name'], ['packages.name'], ),
        sa.PrimaryKeyConstraint('package_name', 'asset_id')
    )
    op.create_index('ix_package_assets_asset_id', 'package_assets', ['asset_id'])

    op.create_table('users',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('email')
    )
    op.create_index('ix_users_account_id', 'users', ['account_id'])

    op.create_table('oauth_device_authorizations',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('device_code_hash', sa.String(length=64), nullable=False),
        sa.Column('user_code', sa.String(length=8), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.String(length=255), nullable=False),
        sa.Column('device_serial', sa.String(length=64), nullable=False),
        sa.Column('device_model', sa.String(length=128), nullable=False),
        sa.Column('device_capabilities', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('interval_s', sa.Integer(), nullable=False),
        sa.Column('last_polled_at', sa.BigInteger(), nullable=True),
        sa.Column('user_id', sa.String(length=32), nullable=True),
        sa.Column('device_id', sa.String(length=32), nullable=True),
        sa.Column('grant_id', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'], ),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('device_code_hash'),
        sa.UniqueConstraint('user_code')
    )
    op.create_index('ix_oauth_device_authorizations_expires_at', 'oauth_device_authorizations',
                    ['expires_at'])

    op.create_table('oauth_grants',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('device_id', sa.String(length=32), nullable=False),
        sa.Column('scopes', sa.String(length=255), nullable=False),
        sa.Column('refresh_jti', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('rotated_at', sa.BigInteger(), nullable=True),
        sa.Column('revoked_at', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'], ),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_oauth_grants_device_id', 'oauth_grants', ['device_id'])
    op.create_index('ix_oauth_grants_user_id', 'oauth_grants', ['user_id'])

    op.create_table('oauth_access_tokens',
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('grant_id', sa.String(length=32), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], ),
        sa.PrimaryKeyConstraint('jti')
    )
    op.create_index('ix_oauth_access_tokens_grant_id', 'oauth_access_tokens', ['grant_id'])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in reversed(TABLES):
        op.drop_table(table)
