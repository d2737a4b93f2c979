"""Inbox look-up by Message-ID and status in one index; claims that hold a row alone.

The duplicate check (`pipeline.route._EARLIER`: same Message-ID, status done) was planned on
the (status, arrived_at) index by SQLite, so every new message scanned every processed one —
the cost of a message grew with the inbox. One (message_id, status) index serves it and every
look-up by Message-ID alone (its first column), so the single-column index goes.

`claimed_alone`: a row whose run died is retried alone, and only a death while it was alone
counts as an attempt (a batch of 64 killed three times no longer sets 64 messages aside).

Revision ID: 0008_issue18
Revises: 0007_issue16
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_issue18"
down_revision: str | Sequence[str] | None = "0007_issue16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Alembic upgrade: replace ix_inbox_messages_message_id by (message_id, status); add
    inbox_messages.claimed_alone. Runs inside Alembic's migration context (`op`); returns None."""
    op.create_index(
        "ix_inbox_messages_message_id_status", "inbox_messages", ["message_id", "status"]
    )
    op.drop_index("ix_inbox_messages_message_id", table_name="inbox_messages")
    op.add_column(
        "inbox_messages",
        sa.Column("claimed_alone", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    """Alembic downgrade: back to the single-column Message-ID index, no claimed_alone;
    returns None."""
    with op.batch_alter_table("inbox_messages") as batch:
        batch.drop_column("claimed_alone")
    op.create_index("ix_inbox_messages_message_id", "inbox_messages", ["message_id"])
    op.drop_index("ix_inbox_messages_message_id_status", table_name="inbox_messages")
