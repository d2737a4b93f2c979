"""Delivery channels to another authority (Migraciones): email today, an interoperability
web service later, behind one small `Channel` protocol."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.errors import ConfigError
from mailflow.intake.catalogue import Tramite
from mailflow.mail.outgoing import POLICY, Attachment, message_id_for, sender_address, text_to_html
from mailflow.store.models import OutboxMessage

MIGRACIONES_KINDS = ("oficio_migraciones", "revocacion_migraciones")
"""Outbox kinds of mail to Migraciones (delivery_events acts when the server accepts them)."""


@dataclass(frozen=True)
class Parcel:
    """What is delivered: the case, its subject and text, the signed PDFs, and a dedupe key
    (the same key never produces a second delivery)."""

    case_id: int
    case_number: str
    mailbox: str | None
    kind: str  # one of MIGRACIONES_KINDS
    subject: str
    text: str
    dedupe_key: str
    attachments: Sequence[Attachment] = field(default_factory=tuple)


class Channel(Protocol):
    """Hands a parcel to another authority inside the caller's transaction; returns a Spanish
    note of where it went. Acceptance by the other side is reported later (delivery_events)."""

    def deliver(self, session: Session, parcel: Parcel, now: dt.datetime) -> str:
        """Hand `parcel` over in `session`'s transaction at `now` (aware datetime); returns a
        Spanish note of where it went (for the audit trail). Raises ConfigError when the channel
        is not configured.
        """


class EmailChannel:
    """Queues the parcel in the outbox, addressed to `migraciones.address` (sent by the
    sender like every reply, with its retries and its sent-journal)."""

    def __init__(self, settings: Settings) -> None:
        address = settings.migraciones.address
        if not address:
            raise ConfigError(
                "migraciones.address no está configurado (o MAILFLOW_MIGRACIONES_ADDRESS): "
                "no se puede enviar el oficio a Migraciones"
            )
        self.settings = settings
        self.address = address

    def deliver(self, session: Session, parcel: Parcel, now: dt.datetime) -> str:
        """Queue `parcel` as one outbox message to migraciones.address (text + HTML, its
        attachments, Auto-Submitted), deduplicated by `parcel.dedupe_key`; returns a Spanish note
        ('en cola para … (envío N)', or 'ya en cola para …' when already queued). Nothing is sent
        here: the sender does it.
        """
        existing = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == parcel.dedupe_key)
        )
        if existing is not None:
            return f"ya en cola para {existing.to_addr}"
        settings = self.settings
        inst = settings.institution
        from_addr = sender_address(settings.mailboxes, parcel.mailbox, inst.domain)
        msg = EmailMessage(policy=POLICY)
        msg["Subject"] = parcel.subject
        msg["From"] = email.utils.formataddr((f"{inst.name}", from_addr), charset="utf-8")
        msg["To"] = email.utils.formataddr((settings.migraciones.name, self.address), "utf-8")
        msg["Date"] = email.utils.format_datetime(now)
        mid = message_id_for(parcel.case_number, parcel.dedupe_key, inst.domain)
        msg["Message-ID"] = f"<{mid}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Mailflow-Case"] = parcel.case_number
        msg.set_content(parcel.text, charset="utf-8")
        msg.add_alternative(text_to_html(parcel.text), subtype="html", charset="utf-8")
        for att in parcel.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=att.filename)
        row = OutboxMessage(
            case_id=parcel.case_id,
            kind=parcel.kind,
            dedupe_key=parcel.dedupe_key,
            message_id=mid,
            from_addr=from_addr,
            to_addr=self.address,
            subject=parcel.subject,
            raw=msg.as_bytes(),
            created_at=now,
            next_attempt_at=now,
        )
        session.add(row)
        session.flush()  # not a CaseMessage: the applicant's thread never references this mail
        return f"en cola para {self.address} (envío {row.id})"


def channel_for(settings: Settings) -> Channel:
    """The configured channel to Migraciones (email; raises ConfigError without an address)."""
    return EmailChannel(settings)


def migraciones_refusal(settings: Settings, catalogue: Iterable[Tramite]) -> str | None:
    """Why `run`/`serve` must not start: procedures with `issue: automatic` need
    `migraciones.address`; None when it is set or nothing is automatic (`check` never asks)."""
    automatic = [t.id for t in catalogue if t.issue == "automatic"]
    if settings.migraciones.address or not automatic:
        return None
    return (
        "migraciones.address no está configurado (config.yaml o MAILFLOW_MIGRACIONES_ADDRESS) y "
        f"los trámites {', '.join(automatic)} se emiten automáticamente: sus oficios no "
        "podrían enviarse a Migraciones"
    )
