"""Delivery reports that come back: tell a bounce from other automatic mail and find the
outbox message it returns."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases.delivery_events import on_bounced
from mailflow.config import Settings
from mailflow.mail.message import ParsedMessage
from mailflow.store.models import OutboxMessage
from mailflow.triage.automatic import RuleHit

BOUNCE_RULES = frozenset({"delivery_report", "daemon_sender", "undelivered_text"})
MAX_IDS = 50  # Message-IDs looked up from one report
SCAN_BYTES = 1 << 20


def is_bounce(hits: Sequence[RuleHit], msg: ParsedMessage) -> bool:
    """Whether the automatic-mail rules that hit describe a delivery failure (not a read
    receipt, an out-of-office reply or a list message)."""
    names = {h.rule for h in hits}
    if not names & BOUNCE_RULES:
        return False
    content_type = msg.header("content-type").lower()
    return not (
        names & BOUNCE_RULES == {"delivery_report"} and "disposition-notification" in content_type
    )


def returned_ids(msg: ParsedMessage, domain: str) -> list[str]:
    """Message-IDs of our domain that the report names: In-Reply-To, References, and any
    quoted back in its body (the returned message or its headers)."""
    pattern = re.compile(rb"[\w.+=-]+@" + re.escape(domain.encode()) + rb"(?![\w-])", re.I)
    found = [i.strip("<> ") for i in (*msg.in_reply_to, *msg.references)]
    found += [m.decode("ascii", "replace") for m in pattern.findall(msg.raw[:SCAN_BYTES])]
    ours = [i for i in found if i.lower().endswith("@" + domain.lower())]
    return list(dict.fromkeys(ours))[:MAX_IDS]


def returned_delivery(
    session: Session, settings: Settings, msg: ParsedMessage, reason: str, now: dt.datetime
) -> OutboxMessage | None:
    """The outbox message a delivery report returns (newest named), after recording its
    bounce with `delivery_events.on_bounced`; None when it names none of ours."""
    ids = returned_ids(msg, settings.institution.domain)
    if not ids:
        return None
    row = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.message_id.in_(ids))
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        on_bounced(session, settings, row, now, reason)
    return row
