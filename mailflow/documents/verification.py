"""Public verification of an issued document by its code: a constancia de validez or why not."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.documents.qr import display_code, normalize_code
from mailflow.store.models import Case, Document

KIND_NAMES = {
    "cargo": "Cargo de recepción",
    "oficio": "Oficio",
    "autorizacion_viaje": "Autorización de Viaje",
}


@dataclass(frozen=True)
class Constancia:
    """What the public page may show about a genuine document (minimum personal data)."""

    code: str
    kind: str
    kind_name: str
    number: str
    titular: str  # partially masked
    issued_at: dt.datetime
    valid_from: dt.date | None
    valid_until: dt.date | None
    revoked: bool
    revoked_at: dt.datetime | None
    revoked_reason: str | None
    sha256: str
    details: tuple[tuple[str, str], ...] = ()  # (label, value) the document certifies


@dataclass(frozen=True)
class NotValid:
    """The code does not correspond to a genuine document; `reason` says why, in Spanish."""

    code: str
    reason: str


def mask_name(name: str) -> str:
    """Keep the first two letters of each word: "María José Pérez" → "Ma*** Jo** Pé***"."""
    words = name.split()
    return " ".join(w[:2] + "*" * max(len(w) - 2, 1) for w in words) if words else "—"


def verify_code(session: Session, data_dir: Path, text: str) -> Constancia | NotValid:
    """Look up a verification code; the stored PDF must still hash to the recorded SHA-256."""
    code = normalize_code(text)
    if code is None:
        return NotValid(text[:40], "El código no tiene el formato de un código de verificación.")
    document = session.scalar(select(Document).where(Document.verification_code == code))
    if document is None:
        return NotValid(display_code(code), "No existe ningún documento emitido con este código.")
    if not _file_matches(data_dir / document.path, document.sha256):
        return NotValid(
            display_code(code),
            "El archivo registrado de este documento no coincide con el emitido.",
        )
    data = document.data or {}
    return Constancia(
        code=display_code(code),
        kind=document.kind,
        kind_name=KIND_NAMES.get(document.kind, document.kind),
        number=document.number or "",
        titular=mask_name(str(data.get("titular") or "")),
        issued_at=document.issued_at,
        valid_from=_date(data.get("valid_from")),
        valid_until=_date(data.get("valid_until")),
        revoked=document.revoked_at is not None,
        revoked_at=document.revoked_at,
        revoked_reason=document.revoked_reason,
        sha256=document.sha256,
        details=_details(session, document),
    )


DETAILS = {
    "autorizacion_viaje": (
        ("destino", "Destino"),
        ("fecha_salida", "Fecha de salida"),
        ("fecha_retorno", "Fecha de retorno"),
    ),
}
"""Per document kind: the case fields (rules/fields.yaml ids) its constancia shows."""


def _details(session: Session, document: Document) -> tuple[tuple[str, str], ...]:
    """The certified particulars (a trip's destination and dates) from the document or case."""
    wanted = DETAILS.get(document.kind, ())
    if not wanted:
        return ()
    data = document.data or {}
    case = session.get(Case, document.case_id)
    fields = (case.fields if case is not None else None) or {}
    out = []
    for key, label in wanted:
        value = data.get(key) or fields.get(key)
        if isinstance(value, dict):
            value = value.get("value")
        if value:
            day = _date(value)
            out.append((label, day.strftime("%d/%m/%Y") if day else str(value)))
    return tuple(out)


def _file_matches(path: Path, sha256: str) -> bool:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return False
    return digest == sha256


def _date(value: object) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None
