"""Bulk seed for the desk at volume: thousands of queued messages and cases in a few inserts.

Rows are written with Core bulk INSERTs (not through the pipeline) so 100,000 cases take
seconds; the audit events carry the same reasons the pipeline records.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import insert

from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage
from mailflow.store.search import search_text

FIRST = ["José", "María", "Oriana", "Gregorio", "Lucía", "Andrés", "Yésica", "Ramón", "Ángel",
         "Sofía", "Jesús", "Daniela", "Néstor", "Valentina", "Luis", "Carmen", "Óscar", "Inés"]  # fmt: skip
LAST = ["López", "Pérez", "Rivas", "Núñez", "González", "Rodríguez", "Martínez", "Hernández",
        "Díaz", "Gómez", "Sánchez", "Ramírez", "Torres", "Peña", "Muñoz", "Castañeda"]  # fmt: skip
TRAMITES = [  # (id, machine, mailbox, term days)
    ("actualizacion_datos", "general", "solicitantesrefugio", 15),
    ("cambio_clave", "general", "solicitantesrefugio", 15),
    ("renuncia", "general", "mesadepartes", 15),
    ("autorizacion_viaje", "oficio", "refugiados", 5),
    ("prorroga_residencia", "oficio", "refugiados", 15),
    ("reconsideracion", "recurso", "mesadepartes", 30),
]
STATES = ["recibido", "en_tramite", "observado", "resuelto", "archivado"]
MESSAGE_REASONS = [
    "No se pudo identificar el trámite en el asunto «{s}» ni en el cuerpo del mensaje",
    "El asunto «{s}» menciona más de un trámite (Renuncia, Reconsideración); decide el personal",
    "Solicitud fuera del catálogo de trámites de esta mesa de partes: Solicitud de asilo político",
]
CASE_REASONS = [
    "Trámite identificado por el asunto: Reconsideración (coincidencia 100% con «recurso "
    "reconsideracion»); Recurso extemporáneo: presentado después de 15 días hábiles desde la "
    "notificación (2026-01-10)",
    "Firma indeterminate: el certificado del firmante no es de una entidad de confianza",
    "El remitente no coincide con el correo registrado del titular",
]
SUBJECTS = ["consulta urgente", "ayuda por favor", "solicitud", "información", "documentos",
            "mi trámite", "pregunta sobre carné", "buenos días"]  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    """What was written: ids of queued messages and of cases in review, and one known person."""

    message_ids: list[int]
    review_case_ids: list[int]
    known_name: str
    known_case_number: str


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"


def raw_message(uid: int, name: str, address: str, subject: str) -> bytes:
    text = (
        f"From: {name} <{address}>\r\nTo: mesadepartes@cepr.mailflow.localhost\r\n"
        f"Subject: {subject}\r\nMessage-ID: <vol{uid}@example.org>\r\n"
        "Date: Mon, 02 Mar 2026 09:00:00 -0500\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Buenos días, les escribe {name}. Quisiera saber cómo continuar con mi solicitud.\r\n"
        "Gracias.\r\n"
    )
    return text.encode("utf-8")


def seed_volume(
    db: Database,
    *,
    messages: int,
    review_cases: int,
    other_cases: int,
    now: dt.datetime,
    seed: int = 15,
    start_uid: int = 100_000,
    events_per_case: int = 0,
) -> Seeded:
    """Write `messages` unclassified messages, `review_cases` cases in review and `other_cases`
    cases in other states, spread over the 60 days before `now`, plus `events_per_case` extra
    audit events per case (a realistic audit table for benchmarks). Returns what was written."""
    rng = random.Random(seed)
    known = "José Gregorio López Rivas"
    msg_rows, msg_events, subjects = [], [], []
    for i in range(messages):
        name = known if i == 0 else person(rng)
        address = f"persona{start_uid + i}@example.org"
        subject = rng.choice(SUBJECTS)
        subjects.append(subject)
        raw = raw_message(start_uid + i, name, address, subject)
        arrived = now - dt.timedelta(minutes=rng.randint(30, 60 * 24 * 60))
        msg_rows.append(
            {
                "mailbox": rng.choice(["mesadepartes", "solicitantesrefugio", "refugiados"]),
                "uidvalidity": 1, "uid": start_uid + i, "message_id": f"<vol{start_uid + i}@example.org>",
                "sha256": f"{start_uid + i:064d}", "raw": raw, "size": len(raw), "source": "file",
                "arrived_at": arrived, "status": "done", "attempts": 1, "processed_at": arrived,
                "disposition": "review", "tramite": None, "case_id": None,
            }
        )  # fmt: skip
    with db.session() as session:
        message_ids: list[int] = []
        for chunk in _chunks(msg_rows, 500):
            message_ids += list(
                session.scalars(
                    insert(InboxMessage).returning(InboxMessage.id, sort_by_parameter_order=True),
                    chunk,
                )
            )
        for mid, row, subject in zip(message_ids, msg_rows, subjects, strict=True):
            msg_events.append(
                {
                    "inbox_message_id": mid, "case_id": None, "at": row["arrived_at"],
                    "actor": "sistema", "kind": "exception", "event": None, "from_state": None,
                    "to_state": None, "reason": rng.choice(MESSAGE_REASONS).format(s=subject),
                    "data": {},
                }
            )  # fmt: skip
        for chunk in _chunks(msg_events, 2000):
            session.execute(insert(CaseEvent), chunk)
    case_rows, states = [], []
    total = review_cases + other_cases
    for i in range(total):
        tramite, machine, mailbox, term = rng.choice(TRAMITES)
        name = known if i == 0 else person(rng)
        received = now - dt.timedelta(minutes=rng.randint(30, 60 * 24 * 60))
        state = "en_revision" if i < review_cases else rng.choice(STATES)
        number = f"EXP-2026-{i + 1:06d}"
        document = f"{rng.randint(10_000_000, 99_999_999)}"
        email = f"caso{i}@example.org"
        flags = ["extemporaneo"] if state == "en_revision" and i % 7 == 3 else []
        fields = {
            "nombres_apellidos": {"value": name},
            "carne_extranjeria": {"value": f"CE{i:07d}"},
        }
        closed = received + dt.timedelta(days=rng.randint(1, 20)) if state == "archivado" else None
        case_rows.append(
            {
                "number": number, "year": 2026, "seq": i + 1, "tramite": tramite,
                "machine": machine, "machine_version": 1, "state": state,
                "applicant_email": email, "applicant_name": name, "applicant_document": document,
                "mailbox": mailbox, "received_at": received,
                "legal_receipt_day": received.date(),
                "due_date": received.date() + dt.timedelta(days=term + term // 2),
                "closed_at": closed, "sla": {}, "fields": fields, "flags": flags,
                "created_at": received, "updated_at": received, "lock_version": 1,
                "search_text": search_text(number, name, document, email, fields),
            }
        )  # fmt: skip
        states.append(state)
    with db.session() as session:
        case_ids: list[int] = []
        for chunk in _chunks(case_rows, 1000):
            case_ids += list(
                session.scalars(
                    insert(Case).returning(Case.id, sort_by_parameter_order=True), chunk
                )
            )
        events = [
            {
                "inbox_message_id": None, "case_id": cid, "at": row["received_at"],
                "actor": "sistema", "kind": "transition", "event": "derivar_a_revision",
                "from_state": "recibido", "to_state": "en_revision",
                "reason": rng.choice(CASE_REASONS), "data": {},
            }
            for cid, row, state in zip(case_ids, case_rows, states, strict=True)
            if state == "en_revision"
        ]  # fmt: skip
        events += [
            {
                "inbox_message_id": None, "case_id": cid, "at": row["received_at"],
                "actor": "sistema", "kind": "intake", "event": None, "from_state": None,
                "to_state": None, "reason": "Requisitos completos", "data": {},
            }
            for cid, row in zip(case_ids, case_rows, strict=True)
            for _ in range(events_per_case)
        ]  # fmt: skip
        for chunk in _chunks(events, 2000):
            session.execute(insert(CaseEvent), chunk)
    review = [cid for cid, s in zip(case_ids, states, strict=True) if s == "en_revision"]
    return Seeded(message_ids, review, known, case_rows[0]["number"] if case_rows else "")


def _chunks(rows: list[dict[str, object]], size: int) -> list[list[dict[str, object]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]
