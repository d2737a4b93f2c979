"""Which case a message refers to: our Message-IDs it answers, else a case number it names."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.store.models import Case, CaseMessage

CASE_NUMBER = re.compile(r"\bEXP-(\d{4})-(\d{6})\b", re.IGNORECASE)
"""A case number as we print it (numbering.format_expediente), in any letter case."""


def referenced_case_id(session: Session, message_ids: Iterable[str], text: str) -> int | None:
    """The id of the case a message refers to, or None.

    `message_ids` are its In-Reply-To and References ids (the newest of our messages among them
    wins); failing those, the first `EXP-YYYY-NNNNNN` in `text` (a subject, or a subject and
    body) that names an existing case. Reads only; in the caller's session.
    """
    ids = [i for i in message_ids if i]
    if ids:
        case_id = session.scalar(
            select(CaseMessage.case_id)
            .where(CaseMessage.message_id.in_(ids))
            .order_by(CaseMessage.id.desc())
            .limit(1)
        )
        if case_id is not None:
            return int(case_id)
    found = CASE_NUMBER.search(text)
    if found is None:
        return None
    number = f"EXP-{found.group(1)}-{found.group(2)}"
    case_id = session.scalar(select(Case.id).where(Case.number == number))
    return None if case_id is None else int(case_id)
