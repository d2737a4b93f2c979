"""Replies written at the desk: a template or free text, previewed, queued in the outbox, audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.mail.message import ParsedMessage
from mailflow.mail.outgoing import Reply, Thread, compose, sender_address
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseMessage, InboxMessage, OutboxMessage
from mailflow.vocabulary import AuditKind

DESK_DIR = "desk"
MAX_TEXT = 20_000
_TITLE = re.compile(r"\{#-?\s*título:\s*(.+?)\s*-?#\}")


@dataclass(frozen=True)
class Draft:
    """A reply about to be sent: who gets it, from which address, with which subject and text."""

    to_addr: str
    to_name: str
    from_addr: str
    subject: str
    text: str
    in_reply_to: str | None
    case_id: int | None


def desk_templates(templates_dir: Path) -> list[tuple[str, str]]:
    """(id, title) of templates/desk/*.txt.j2; the title is the file's `{# título: … #}` line."""
    out = []
    for path in sorted((templates_dir / DESK_DIR).glob("*.txt.j2")):
        found = _TITLE.search(path.read_text(encoding="utf-8")[:300])
        out.append((path.name.removesuffix(".txt.j2"), found[1] if found else path.stem))
    return out


def template_text(app: App, template: str, applicant_name: str) -> str:
    """A desk template rendered for one applicant (KeyError: no such template)."""
    known = dict(desk_templates(app.settings.templates_dir))
    if template not in known:
        raise KeyError(template)
    context = {
        "applicant": {"name": applicant_name},
        "institution": app.settings.institution.model_dump(),
        "tramites": sorted(t.name for t in app.catalogue if not t.informative),
    }
    text = app.templates.get_template(f"{DESK_DIR}/{template}.txt.j2").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n")).strip() + "\n"


def draft_for(
    session: Session, app: App, message: InboxMessage, parsed: ParsedMessage, text: str
) -> Draft:
    """The reply to `message` with `text`: to its sender, from its mailbox, 'Re: <subject>'.

    Raises ValueError (Spanish) when there is nobody to answer or the text is empty/too long.
    """
    body = text.replace("\r\n", "\n").strip()
    if not body:
        raise ValueError("Escriba el texto de la respuesta.")
    if len(body) > MAX_TEXT:
        raise ValueError(f"La respuesta es demasiado larga (máximo {MAX_TEXT} caracteres).")
    if not parsed.sender or "@" not in parsed.sender:
        raise ValueError("El mensaje no tiene un remitente válido al que responder.")
    settings = app.settings
    subject = parsed.subject or "su mensaje"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    case = session.get(Case, message.case_id) if message.case_id else None
    if case is not None:
        subject = f"[{case.number}] {subject.removeprefix('Re: ')}"
        subject = f"Re: {subject}"
    return Draft(
        to_addr=parsed.sender,
        to_name=parsed.sender_name or "",
        from_addr=sender_address(settings.mailboxes, message.mailbox, settings.institution.domain),
        subject=subject[:200],
        text=body + "\n",
        in_reply_to=(parsed.message_id or "").strip("<>") or None,
        case_id=message.case_id,
    )


def send(
    session: Session,
    app: App,
    message: InboxMessage,
    draft: Draft,
    *,
    actor: str,
    now: dt.datetime,
) -> OutboxMessage:
    """Queue `draft` in the outbox once (same message and text → the same row) and audit it."""
    digest = hashlib.sha256(draft.text.encode("utf-8")).hexdigest()[:16]
    key = f"mesa:{message.id}:{digest}"
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
    if existing is not None:
        return existing
    case = session.get(Case, draft.case_id) if draft.case_id else None
    number = case.number if case else f"MSG-{message.id}"
    settings = app.settings
    reply = Reply(
        case_number=number,
        tramite_name="",
        template="mesa",
        text=draft.text,
        from_addr=draft.from_addr,
        from_name=f"Mesa de Partes Virtual - {settings.institution.short_name}",
        to_addr=draft.to_addr,
        to_name=draft.to_name,
        dedupe_key=key,
        domain=settings.institution.domain,
        thread=Thread(draft.in_reply_to, (draft.in_reply_to,) if draft.in_reply_to else ()),
    )
    mime = _staff_written(compose(reply, now), draft.subject, case is not None)
    row = OutboxMessage(
        case_id=draft.case_id,
        inbox_message_id=message.id,
        kind="mesa",
        dedupe_key=key,
        message_id=str(mime["Message-ID"]).strip("<>"),
        from_addr=draft.from_addr,
        to_addr=draft.to_addr,
        subject=draft.subject,
        raw=mime.as_bytes(),
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    if case is not None:
        session.add(
            CaseMessage(
                case_id=case.id, direction="out", outbox_id=row.id,
                message_id=row.message_id, at=now,
            )
        )  # fmt: skip
    record(
        session,
        AuditKind.REPLY,
        f"Respuesta del personal a {draft.to_addr}: {draft.subject}",
        at=now,
        actor=actor,
        case_id=draft.case_id,
        inbox_message_id=message.id,
        data={"outbox_id": row.id, "to": draft.to_addr},
    )
    return row


def _staff_written(mime: EmailMessage, subject: str, has_case: bool) -> EmailMessage:
    """A person wrote it: no Auto-Submitted (RFC 3834), the thread's subject."""
    del mime["Auto-Submitted"]
    del mime["Subject"]
    mime["Subject"] = subject
    if not has_case:
        del mime["X-Mailflow-Case"]
    return mime
