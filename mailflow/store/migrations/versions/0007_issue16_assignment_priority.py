"""Case assignee and priority, vulnerability signals of a case, forced password change.

Revision ID: 0007_issue16
Revises: 0006_issue15
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_issue16"
down_revision: str | Sequence[str] | None = "0006_issue15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN: batch mode would copy and drop `cases` and `users`, which many tables
    # reference (it fails under foreign keys once they hold rows)
    """Alembic upgrade: add the case assignee and priority, vulnerability signals and the forced
    password change. Runs inside Alembic's migration context (`op`); returns None.
    """
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite cannot ALTER a constraint in: the reference goes inline with the new column
        op.execute(
            "ALTER TABLE cases ADD COLUMN assignee_id INTEGER "
            "CONSTRAINT fk_cases_assignee_id_users REFERENCES users (id)"
        )
    else:
        op.add_column("cases", sa.Column("assignee_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_cases_assignee_id_users", "cases", "users", ["assignee_id"], ["id"]
        )
    op.add_column("cases", sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_cases_assignee_id", "cases", ["assignee_id"])
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "case_signals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="sugerida"),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "case_id", "category", "source", name="uq_case_signals_case_id_category_source"
        ),
        sa.CheckConstraint(
            "status IN ('sugerida', 'confirmada', 'descartada')", name="ck_case_signals_status"
        ),
    )
    op.create_index("ix_case_signals_case_id", "case_signals", ["case_id"])


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    op.drop_index("ix_case_signals_case_id", "case_signals")
    op.drop_table("case_signals")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
    op.drop_index("ix_cases_assignee_id", "cases")
    with op.batch_alter_table("cases") as batch:
        if op.get_bind().dialect.name != "sqlite":
            batch.drop_constraint("fk_cases_assignee_id_users", type_="foreignkey")
        batch.drop_column("priority")
        batch.drop_column("assignee_id")
