"""Cases get a folded search column (accents, case and word order ignored by the desk search);
audit events get an index on their inbox message (the exception queue reads the latest reason);
cases an index on received_at (the case list's default order); inbox messages one on case_id
(a case's messages, shown from the queue and the case page).

Revision ID: 0006_issue15
Revises: 0005_issue14a
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_issue15"
down_revision: str | Sequence[str] | None = "0005_issue14a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000


def upgrade() -> None:
    """Alembic upgrade: add cases.search_text (folded search) and the indexes the desk's queues and
    lists read. Runs inside Alembic's migration context (`op`); returns None.
    """
    op.create_index("ix_inbox_messages_case_id", "inbox_messages", ["case_id"], unique=False)
    op.create_index("ix_cases_received_at", "cases", ["received_at"], unique=False)
    op.create_index(
        "ix_case_events_inbox_message_id", "case_events", ["inbox_message_id"], unique=False
    )
    # plain ADD COLUMN: batch mode could copy and drop `cases`, which many tables reference
    op.add_column("cases", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    _backfill()
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _trigram_index(bind)
    else:  # SQLite: the LIKE scan reads this narrow covering index instead of the table
        op.create_index("ix_cases_search_text_trgm", "cases", ["search_text"])


def _backfill() -> None:
    from mailflow.store.search import search_text

    bind = op.get_bind()
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("number", sa.String),
        sa.column("applicant_name", sa.String),
        sa.column("applicant_document", sa.String),
        sa.column("applicant_email", sa.String),
        sa.column("fields", sa.JSON),
        sa.column("search_text", sa.Text),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(
                cases.c.id, cases.c.number, cases.c.applicant_name,
                cases.c.applicant_document, cases.c.applicant_email, cases.c.fields,
            ).where(cases.c.id > last).order_by(cases.c.id).limit(BATCH)
        ).all()  # fmt: skip
        if not rows:
            return
        for row in rows:
            text = search_text(row[1], row[2], row[3], row[4], row[5] or {})
            bind.execute(cases.update().where(cases.c.id == row[0]).values(search_text=text))
        last = rows[-1][0]


def _trigram_index(bind: sa.engine.Connection) -> None:
    """A pg_trgm GIN index for LIKE '%term%'; skipped (plain scan) when the extension is absent."""
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        return
    nested = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        bind.execute(
            sa.text(
                "CREATE INDEX ix_cases_search_text_trgm ON cases "
                "USING gin (search_text gin_trgm_ops)"
            )
        )
        nested.commit()
    except sa.exc.DBAPIError:  # no privilege to create the extension: search still works
        nested.rollback()


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    op.drop_index("ix_inbox_messages_case_id", table_name="inbox_messages")
    op.drop_index("ix_cases_received_at", table_name="cases")
    op.drop_index("ix_case_events_inbox_message_id", table_name="case_events")
    op.execute("DROP INDEX IF EXISTS ix_cases_search_text_trgm")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("search_text")
