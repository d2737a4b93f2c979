"""Initial schema: inbox, cases and their audit trail, outbox, documents, timers, counters, people.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

APPEND_ONLY_MESSAGE = "case_events is append-only: add a new event instead"

PG_APPEND_ONLY = [
    f"""
    CREATE FUNCTION mailflow_case_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (% refused)', TG_OP;
    END
    $$
    """,
    """
    CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION mailflow_case_events_append_only()
    """,
]

SQLITE_APPEND_ONLY = [
    f"""
    CREATE TRIGGER case_events_no_{op_name.lower()} BEFORE {op_name} ON case_events
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END
    """
    for op_name in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    """Alembic upgrade: create the initial schema (inbox, cases, audit events, outbox, documents,
    timers, counters, applicants, users). Runs inside Alembic's migration context (`op`); returns
    None.
    """
    op.create_table(
        "applicants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("document_number", sa.String(), nullable=True),
        sa.Column("carne_extranjeria", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("nationality", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("data", JSON_TYPE, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applicants")),
    )
    op.create_index(
        op.f("ix_applicants_carne_extranjeria"), "applicants", ["carne_extranjeria"], unique=False
    )
    op.create_index(
        op.f("ix_applicants_document_number"), "applicants", ["document_number"], unique=False
    )
    op.create_index(op.f("ix_applicants_email"), "applicants", ["email"], unique=False)
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tramite", sa.String(length=80), nullable=False),
        sa.Column("machine", sa.String(length=80), nullable=False),
        sa.Column("machine_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=80), nullable=False),
        sa.Column("applicant_email", sa.String(), nullable=True),
        sa.Column("applicant_name", sa.String(), nullable=True),
        sa.Column("applicant_document", sa.String(), nullable=True),
        sa.Column("mailbox", sa.String(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("legal_receipt_day", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla", JSON_TYPE, nullable=False),
        sa.Column("fields", JSON_TYPE, nullable=False),
        sa.Column("flags", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
    )
    op.create_index(op.f("ix_cases_applicant_email"), "cases", ["applicant_email"], unique=False)
    op.create_index(op.f("ix_cases_due_date"), "cases", ["due_date"], unique=False)
    op.create_index(op.f("ix_cases_state"), "cases", ["state"], unique=False)
    op.create_index(op.f("ix_cases_tramite"), "cases", ["tramite"], unique=False)
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "year", name=op.f("pk_counters")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('staff', 'manager', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(), nullable=True),
        sa.Column("verification_code", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("event_key", sa.String(), nullable=False),
        sa.Column("data", JSON_TYPE, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_documents_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("case_id", "event_key", name=op.f("uq_documents_case_id_event_key")),
        sa.UniqueConstraint("verification_code", name=op.f("uq_documents_verification_code")),
    )
    op.create_index(op.f("ix_documents_number"), "documents", ["number"], unique=False)
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disposition", sa.String(length=20), nullable=True),
        sa.Column("tramite", sa.String(length=80), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "source IN ('imap', 'smtp', 'lmtp', 'file')", name=op.f("ck_inbox_messages_source")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'processing', 'done', 'set_aside', 'duplicate')",
            name=op.f("ck_inbox_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_inbox_messages_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
        sa.UniqueConstraint(
            "mailbox", "uidvalidity", "uid", name=op.f("uq_inbox_messages_mailbox_uidvalidity_uid")
        ),
    )
    op.create_index(
        op.f("ix_inbox_messages_message_id"), "inbox_messages", ["message_id"], unique=False
    )
    op.create_index(op.f("ix_inbox_messages_sha256"), "inbox_messages", ["sha256"], unique=False)
    op.create_index(
        "ix_inbox_messages_status_arrived_at",
        "inbox_messages",
        ["status", "arrived_at"],
        unique=False,
    )
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_by", sa.String(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_timers_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
        sa.UniqueConstraint(
            "case_id", "kind", "due_at", name=op.f("uq_timers_case_id_kind_due_at")
        ),
    )
    op.create_index("ix_timers_fired_at_due_at", "timers", ["fired_at", "due_at"], unique=False)
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("inbox_message_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=80), nullable=True),
        sa.Column("from_state", sa.String(length=80), nullable=True),
        sa.Column("to_state", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", JSON_TYPE, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_message_id"],
            ["inbox_messages.id"],
            name=op.f("fk_case_events_inbox_message_id_inbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case_id_at", "case_events", ["case_id", "at"], unique=False)
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("inbox_message_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("from_addr", sa.String(), nullable=False),
        sa.Column("to_addr", sa.String(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')",
            name=op.f("ck_outbox_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_outbox_messages_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_message_id"],
            ["inbox_messages.id"],
            name=op.f("fk_outbox_messages_inbox_message_id_inbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_messages_dedupe_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_messages_message_id")),
    )
    op.create_index(
        op.f("ix_outbox_messages_case_id"), "outbox_messages", ["case_id"], unique=False
    )
    op.create_index(
        "ix_outbox_messages_status_next_attempt_at",
        "outbox_messages",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "case_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("inbox_message_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_case_messages_direction")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_messages_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_message_id"],
            ["inbox_messages.id"],
            name=op.f("fk_case_messages_inbox_message_id_inbox_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_messages.id"],
            name=op.f("fk_case_messages_outbox_id_outbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_messages")),
    )
    op.create_index(op.f("ix_case_messages_case_id"), "case_messages", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_case_messages_message_id"), "case_messages", ["message_id"], unique=False
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("smtp_response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_messages.id"],
            name=op.f("fk_delivery_attempts_outbox_id_outbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(
        op.f("ix_delivery_attempts_outbox_id"), "delivery_attempts", ["outbox_id"], unique=False
    )
    dialect = op.get_bind().dialect.name
    for statement in PG_APPEND_ONLY if dialect == "postgresql" else SQLITE_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER case_events_append_only ON case_events")
        op.execute("DROP FUNCTION mailflow_case_events_append_only()")
    else:
        op.execute("DROP TRIGGER case_events_no_update")
        op.execute("DROP TRIGGER case_events_no_delete")
    op.drop_index(op.f("ix_delivery_attempts_outbox_id"), table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index(op.f("ix_case_messages_message_id"), table_name="case_messages")
    op.drop_index(op.f("ix_case_messages_case_id"), table_name="case_messages")
    op.drop_table("case_messages")
    op.drop_index("ix_outbox_messages_status_next_attempt_at", table_name="outbox_messages")
    op.drop_index(op.f("ix_outbox_messages_case_id"), table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_index("ix_case_events_case_id_at", table_name="case_events")
    op.drop_table("case_events")
    op.drop_index("ix_timers_fired_at_due_at", table_name="timers")
    op.drop_table("timers")
    op.drop_index("ix_inbox_messages_status_arrived_at", table_name="inbox_messages")
    op.drop_index(op.f("ix_inbox_messages_sha256"), table_name="inbox_messages")
    op.drop_index(op.f("ix_inbox_messages_message_id"), table_name="inbox_messages")
    op.drop_table("inbox_messages")
    op.drop_index(op.f("ix_documents_number"), table_name="documents")
    op.drop_table("documents")
    op.drop_table("users")
    op.drop_table("counters")
    op.drop_index(op.f("ix_cases_tramite"), table_name="cases")
    op.drop_index(op.f("ix_cases_state"), table_name="cases")
    op.drop_index(op.f("ix_cases_due_date"), table_name="cases")
    op.drop_index(op.f("ix_cases_applicant_email"), table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_applicants_email"), table_name="applicants")
    op.drop_index(op.f("ix_applicants_document_number"), table_name="applicants")
    op.drop_index(op.f("ix_applicants_carne_extranjeria"), table_name="applicants")
    op.drop_table("applicants")
