"""Cases remember their receiving office (whose legal calendar counts their días hábiles).

Revision ID: 0003_issue12
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_issue12"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Alembic upgrade: add cases.office, the receiving office whose legal calendar counts the
    case's días hábiles. Runs inside Alembic's migration context (`op`); returns None.
    """
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("office", sa.String(40), nullable=True))


def downgrade() -> None:
    """Alembic downgrade: undo `upgrade` of this revision. Runs inside Alembic's context."""
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("office")
