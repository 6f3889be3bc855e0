"""User roles and case-insensitive user names.

Adds ``users.is_admin`` (the first account becomes an admin, so an existing installation
keeps someone who can reach the Admin page) and a unique index on ``lower(username)``:
``alice`` and ``ALICE`` can no longer both exist. The seed's columns stay as they are.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LOWER_INDEX = "uq_users_username_lower"


def upgrade() -> None:
    bind = op.get_bind()
    clashes = (
        bind.execute(
            sa.text(
                "SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        names = ", ".join(sorted(clashes))
        msg = (
            f"User names that differ only in case exist ({names}); remove or rename all but "
            "one of each with `metrics-toolkit users remove NAME`, then upgrade again."
        )
        raise RuntimeError(msg)
    op.add_column(
        "users",
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        sa.text(
            "UPDATE users SET is_admin = :yes WHERE id = (SELECT min(id) FROM users)"
        ).bindparams(yes=True)
    )
    op.create_index(LOWER_INDEX, "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(LOWER_INDEX, table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
