"""Revocation of an issued oficio or autorización de viaje: manager only, reason required,
audited, shown on the public verification page, and notified to Migraciones."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mailflow.documents.channel import Parcel, channel_for
from mailflow.errors import ConfigError, MailflowError
from mailflow.store.audit import record
from mailflow.store.models import Case, Document
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.app import App

REVOCABLE = ("oficio", "autorizacion_viaje")
"""A cargo is never revoked: it proves that a filing happened (TUO Ley 27444, art. 136)."""
REVOKING_ROLES = ("manager", "admin")
MIN_REASON_CHARS = 10
KIND_LABELS = {"oficio": "oficio", "autorizacion_viaje": "autorización de viaje"}


class RevocationError(MailflowError):
    """A revocation that may not happen; the message says why, in Spanish."""


def revoke(
    session: Session,
    app: App,
    document_id: int,
    *,
    actor: str,
    role: str,
    reason: str,
    now: dt.datetime,
) -> Document:
    """Revoke document `document_id` now, in the caller's transaction, and queue the notice to
    Migraciones through the delivery channel (without an address the case is flagged and the
    gap audited; the revocation itself stands). Raises RevocationError when the role is not a
    manager, the reason is shorter than MIN_REASON_CHARS, the document is a cargo (or another
    kind not in REVOCABLE), or it was already revoked."""
    if role not in REVOKING_ROLES:
        raise RevocationError("solo un(a) responsable (manager) puede revocar documentos")
    reason = reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise RevocationError(
            f"indique el motivo de la revocación (al menos {MIN_REASON_CHARS} caracteres)"
        )
    doc = session.get(Document, document_id, with_for_update=True)
    if doc is None:
        raise RevocationError("no existe ese documento")
    if doc.kind not in REVOCABLE:
        raise RevocationError(
            f"un {doc.kind} no se revoca: prueba que la presentación ocurrió"
            if doc.kind == "cargo"
            else f"los documentos de tipo {doc.kind} no se revocan"
        )
    if doc.revoked_at is not None:
        raise RevocationError(f"el documento {doc.number} ya fue revocado")
    case = session.get(Case, doc.case_id)
    assert case is not None
    doc.revoked_at = now
    doc.revoked_reason = reason
    label = KIND_LABELS[doc.kind]
    record(
        session,
        AuditKind.REVOCATION,
        f"Revocado: {label} {doc.number}. Motivo: {reason}",
        at=now,
        actor=actor,
        case_id=case.id,
        data={"document_id": doc.id, "kind": doc.kind, "number": doc.number, "reason": reason},
    )
    _notify_migraciones(session, app, case, doc, reason, actor, now)
    session.flush()
    return doc


def _notify_migraciones(
    session: Session,
    app: App,
    case: Case,
    doc: Document,
    reason: str,
    actor: str,
    now: dt.datetime,
) -> None:
    settings = app.settings
    text = app.templates.get_template("channel/revocacion_migraciones.txt.j2").render(
        institution=settings.institution.model_dump(),
        case={"number": case.number},
        document={"label": KIND_LABELS[doc.kind], "number": doc.number,
                  "issued_at": doc.issued_at.date().isoformat(), "code": doc.verification_code},
        reason=reason,
        revoked_at=app.calendario.local(now).strftime("%d/%m/%Y %H:%M"),
    )  # fmt: skip
    parcel = Parcel(
        case_id=case.id,
        case_number=case.number,
        mailbox=case.mailbox,
        kind="revocacion_migraciones",
        subject=f"[{case.number}] Revocación de {KIND_LABELS[doc.kind]} N° {doc.number}",
        text=text,
        dedupe_key=f"revocacion:{doc.id}",
    )
    try:
        note = channel_for(settings).deliver(session, parcel, now)
    except ConfigError as exc:
        if "revocacion_sin_aviso" not in (case.flags or []):
            case.flags = [*(case.flags or []), "revocacion_sin_aviso"]
        record(session, AuditKind.EXCEPTION, f"Revocación no comunicada a Migraciones: {exc}", at=now,
               actor=actor, case_id=case.id, data={"document_id": doc.id})  # fmt: skip
        return
    record(session, AuditKind.DELIVERY, f"Aviso de revocación a Migraciones {note}", at=now,
           actor=actor, case_id=case.id, data={"document_id": doc.id})  # fmt: skip
