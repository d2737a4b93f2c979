"""Issue a document for a case event: number it, render, sign, store it once, record it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.documents.qr import new_code, verification_url
from mailflow.documents.render import render_pdf
from mailflow.documents.signing import DocumentSigner, SignatureField
from mailflow.documents.templates import (
    KINDS,
    CaseData,
    DocumentTemplate,
    DocumentTemplates,
    build_context,
    fill,
    load_templates,
)
from mailflow.store.models import Document
from mailflow.store.numbering import next_number

DEFAULT_OFICIO_PREFIX = "CEPR/MRE"
NUMBERED = {"oficio": "oficio"}  # kind → counter name (gap-free yearly correlative)


def format_oficio(seq: int, year: int, prefix: str = DEFAULT_OFICIO_PREFIX) -> str:
    """format_oficio(123, 2026) == "000123-2026-CEPR/MRE" (printed after "OFICIO N°")."""
    return f"{seq:06d}-{year:04d}-{prefix}"


def document_path(data_dir: Path, sha256: str) -> Path:
    """Where a document with this hash lives: <data_dir>/documents/ab/abcdef….pdf."""
    return data_dir / "documents" / sha256[:2] / f"{sha256}.pdf"


def issue_document(
    session: Session,
    settings: Settings,
    case: CaseData,
    kind: str,
    event_key: str,
    now: dt.datetime,
    *,
    signer: DocumentSigner,
    templates: Mapping[str, DocumentTemplate] | None = None,
    oficio_prefix: str = DEFAULT_OFICIO_PREFIX,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    automatic: bool = False,
) -> Document:
    """The document of `kind` for `event_key` of the case, issued now or the one issued before.

    Runs in the caller's transaction (the oficio number is taken there, gap-free); the caller
    should hold the case's lock so two workers do not issue for the same event at once. The PDF
    file is written before the row: a rolled-back transaction leaves at most an unreferenced file.
    `automatic` (issued by the system, no clerk) adds the responsible-authority paragraph that
    TUO Ley 27444 art. 4.3 requires for acts produced by automated systems.
    """
    if kind not in KINDS:
        raise ValueError(f"tipo de documento desconocido: {kind!r} (use {', '.join(KINDS)})")
    existing = session.scalar(
        select(Document).where(Document.case_id == case.case_id, Document.event_key == event_key)
    )
    if existing is not None:
        return existing
    if templates is None:
        templates = load_templates(settings.templates_dir / "documents")
    zone = ZoneInfo(settings.calendar.timezone)
    number: str | None = None
    if kind in NUMBERED:
        year = now.astimezone(zone).year
        number = format_oficio(next_number(session, NUMBERED[kind], year), year, oficio_prefix)
    institution = settings.institution.model_dump()
    context = build_context(
        case,
        institution=institution,
        number=number,
        issued_at=now,
        timezone=settings.calendar.timezone,
    )
    filler = templates.filler if isinstance(templates, DocumentTemplates) else None
    text = fill(templates[kind], context, filler=filler)
    if automatic:
        text = dataclasses.replace(text, paragraphs=(*text.paragraphs, authority_note(settings)))
    code = _unused_code(session, random_bytes)
    url = verification_url(settings.institution.public_url, code)
    title = f"{text.title} — {case.expediente}"
    rendered = render_pdf(text, institution=institution, code=code, url=url, title=title)
    signed = signer.sign(
        rendered.pdf, SignatureField(rendered.signature.page, rendered.signature.box)
    )
    sha256 = hashlib.sha256(signed).hexdigest()
    path = document_path(settings.data_dir, sha256)
    _store(path, signed)
    data: dict[str, Any] = {
        "titulo": text.title,
        "subtitulo": text.subtitle,
        "expediente": case.expediente,
        "tramite": case.tramite,
        "tramite_nombre": case.tramite_nombre,
        "titular": str(case.campos.get("nombres_apellidos") or ""),
        "valid_from": text.valid_from.isoformat() if text.valid_from else None,
        "valid_until": text.valid_until.isoformat() if text.valid_until else None,
        "pages": rendered.pages,
    }
    document = Document(
        case_id=case.case_id,
        kind=kind,
        number=number or case.expediente,
        verification_code=code,
        sha256=sha256,
        path=str(path.relative_to(settings.data_dir)),
        size=len(signed),
        issued_at=now,
        event_key=event_key,
        data=data,
    )
    session.add(document)
    session.flush()
    return document


def authority_note(settings: Settings) -> str:
    """The paragraph naming the responsible authority of an automatically issued document
    (TUO de la Ley N° 27444, art. 4.3; config institution.authority_name/_position)."""
    inst = settings.institution
    return (
        "Documento emitido mediante sistema automatizado, conforme al numeral 4.3 del artículo 4 "
        "del Texto Único Ordenado de la Ley N° 27444, Ley del Procedimiento Administrativo "
        f"General. Autoridad responsable: {inst.authority_name}, {inst.authority_position}."
    )


def _unused_code(session: Session, random_bytes: Callable[[int], bytes]) -> str:
    for _ in range(8):
        code = new_code(random_bytes)
        taken = session.scalar(select(Document.id).where(Document.verification_code == code))
        if taken is None:
            return code
    raise RuntimeError("no se pudo generar un código de verificación libre")


def _store(path: Path, data: bytes) -> None:
    if path.exists() and path.stat().st_size == len(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
