"""Staff accounts get an email address (weekly reports to managers, notifications).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Alembic upgrade: add users.email (weekly reports to managers, notifications). Runs inside
    Alembic's migration context (`op`); returns None.
    """
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(), nullable=True))


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
