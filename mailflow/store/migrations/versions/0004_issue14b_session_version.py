"""Staff accounts get a session version: logout and password changes revoke old cookies.

Revision ID: 0004_issue14b
Revises: 0003_issue12
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_issue14b"
down_revision: str | Sequence[str] | None = "0003_issue12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Alembic upgrade: add users.session_version (logout and password changes revoke old cookies).
    Runs inside Alembic's migration context (`op`); returns None.
    """
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
