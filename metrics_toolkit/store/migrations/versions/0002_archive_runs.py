"""Archive run history and the manifest of archive files.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metrics_toolkit.store.sqltypes import JSONDocument, UTCDateTime, utcnow

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("policy_now", UTCDateTime(), nullable=False),
        sa.Column("policy", JSONDocument, nullable=False),
        sa.Column("rows_archived", sa.Integer(), nullable=False),
        sa.Column("rows_rolled_up", sa.Integer(), nullable=False),
        sa.Column("rollups_written", sa.Integer(), nullable=False),
        sa.Column("rows_deleted", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_runs")),
    )
    op.create_table(
        "archive_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("pending_path", sa.String(length=1000), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=utcnow(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_files")),
        sa.UniqueConstraint("path", name=op.f("uq_archive_files_path")),
    )
    op.create_index(op.f("ix_archive_files_run_id"), "archive_files", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_archive_files_run_id"), table_name="archive_files")
    op.drop_table("archive_files")
    op.drop_table("archive_runs")
