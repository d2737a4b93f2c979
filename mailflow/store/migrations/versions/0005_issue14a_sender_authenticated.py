"""Outbox rows remember whether the message they answer came from an authenticated sender,
so the daily automatic-reply cap is counted per authenticated sender (issue 14).

Revision ID: 0005_issue14a
Revises: 0004_issue14b
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_issue14a"
down_revision: str | Sequence[str] | None = "0004_issue14b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite supports it with a constant default): batch mode would copy
    # and drop outbox_messages, which rows of delivery_attempts and case_messages reference
    """Alembic upgrade: add outbox_messages.sender_authenticated (the daily reply cap counts per
    authenticated sender). Runs inside Alembic's migration context (`op`); returns None.
    """
    op.add_column(
        "outbox_messages",
        sa.Column("sender_authenticated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("sender_authenticated")
