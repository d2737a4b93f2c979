"""One place for the Spanish words the desk shows instead of codes (states, flags, mailboxes …)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mailflow.app import App
from mailflow.documents.verification import KIND_NAMES
from mailflow.intake.decision import SIGNED_DOCUMENT, SIGNED_DOCUMENT_LABEL

FLAGS = {
    "firma_no_valida": "Firma por verificar",
    "subsanacion_fuera_de_plazo": "Subsanación fuera de plazo",
    "extemporaneo": "Extemporáneo",
    "identidad_no_coincide": "El remitente no coincide con el registro",
    "refugiado": "Refugiado reconocido",
    "enviado_migraciones": "Enviado a Migraciones",
    "asignado_staff": "Asignado al personal",
    "subsanacion_ampliada": "Plazo de subsanación ampliado por el calendario",
    "alerta_viaje": "Alerta de viaje: revise la fecha de salida y el destino",
    "envio_migraciones_pendiente": "El oficio no se pudo enviar a Migraciones",
    "revocacion_sin_aviso": "La revocación no se pudo comunicar a Migraciones",
    "notificacion_fallida": "Un correo al solicitante rebotó: no fue notificado",
    "respuesta_migraciones": "Migraciones respondió sobre este expediente",
    "mensaje_nuevo": "Mensaje nuevo del solicitante",
    "contenido_activo": "PDF con contenido activo (JavaScript o archivos incrustados)",
    "firmante_distinto": "La firma digital del escrito es de otra persona",
    "firma_manuscrita_por_confirmar": "Escrito sin firma digital: confirmar la firma manuscrita",
    "cargo_emitido": "Cargo ya emitido (el escrito se recibió)",
}
"""Case flags (effects `flag:` / `assign:`, intake flags) → badge text."""

WARNING_FLAGS = frozenset(
    {
        "firma_no_valida",
        "subsanacion_fuera_de_plazo",
        "extemporaneo",
        "identidad_no_coincide",
        "subsanacion_ampliada",
        "alerta_viaje",
        "envio_migraciones_pendiente",
        "revocacion_sin_aviso",
        "notificacion_fallida",
        "contenido_activo",
        "firmante_distinto",
        "firma_manuscrita_por_confirmar",
    }
)
SIGNATURE = {
    "valid": "Válida",
    "untrusted": "No confiable",
    "invalid": "Inválida",
    "unsigned": "Sin firma",
    "absent": "Sin documento",
    "indeterminate": "Por verificar",
}
DOCUMENTS = KIND_NAMES  # document kinds, as the public constancia names them
EVENTS = {
    "intake": "Ingreso de la solicitud",
    "transition": "Cambio de estado",
    "sla": "Plazo",
    "reply": "Respuesta al solicitante",
    "reply_suppressed": "Respuesta no enviada",
    "personal": "Acción del personal",
    "ignorado": "Descartado por el personal",
    "exception": "Enviado a la bandeja de excepciones",
    "notify": "Aviso al personal",
    "assign": "Asignación",
    "flag": "Alerta",
    "document": "Documento emitido",
    "timer": "Vencimiento de plazo",
    "timer_noop": "Vencimiento sin efecto",
    "data_update": "Actualización en el registro",
    "message": "Correo vinculado",
    "duplicate": "Correo duplicado",
    "review": "Derivado a revisión",
    "accept": "Aceptado",
    "inform": "Comunicación informativa",
    "ignore": "Ignorado",
    "nota": "Nota interna",
    "rule": "Regla automática",
}
"""Audit event kinds (case_events.kind) → timeline heading."""
MAILBOX_NAMES = {
    "mesadepartes": "Mesa de partes",
    "solicitantesrefugio": "Solicitantes de refugio",
    "refugiados": "Refugiados",
}
# Reason text (any wording, including future ones) → a short group name for the queue.
REASON_GROUPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"más de un trámite", "Varios trámites posibles"),
        (r"fuera del catálogo", "Fuera del catálogo"),
        (r"no se (pudo )?(identific|reconoc)|sin trámite|no .*trámite", "Trámite no reconocido"),
        (r"extemporáneo", "Recurso extemporáneo"),
        (r"subsanación fuera de plazo", "Subsanación fuera de plazo"),
        (r"^firma|firma (no|inválida|por)", "Firma por verificar"),
        (r"remitente|no coincide|firmante", "Identidad por verificar"),
        (r"adjunto ilegible|problema en el mensaje", "Mensaje dañado o ilegible"),
    )
)
_JARGON = re.compile(r"\s*\(coincidencia \d+\s*% con «[^»]*»\)")
_IDENTIFIED = re.compile(r"^Trámite identificado por (el asunto|el cuerpo del mensaje): ")
_NOT_REASONS = re.compile(r"^(Requisitos completos|Firma válida de )")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_SIGNATURE_STATUS = re.compile(r"^Firma (valid|untrusted|invalid|unsigned|absent|indeterminate):")


def humanize(code: str) -> str:
    """Last resort for an unknown code: 'asignado_staff' → 'Asignado staff'."""
    return code.replace("_", " ").strip().capitalize() or "—"


def dmy(value: dt.date | dt.datetime | str | None) -> str:
    """A date as dd/mm/aaaa ('' for None); ISO strings are accepted."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10]).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return value.strftime("%d/%m/%Y")


def reason_text(reason: str) -> str:
    """A recorded reason made readable: classifier jargon dropped, ISO dates as dd/mm/aaaa."""
    parts = []
    for clause in reason.split("; "):
        clause = _JARGON.sub("", clause)
        clause = _IDENTIFIED.sub("Trámite reconocido: ", clause)
        clause = _SIGNATURE_STATUS.sub(lambda m: f"Firma {SIGNATURE[m[1]].lower()}:", clause)
        parts.append(_ISO_DATE.sub(lambda m: f"{m[3]}/{m[2]}/{m[1]}", clause))
    return "; ".join(p for p in parts if p)


@lru_cache(maxsize=4096)
def reason_group(reason: str) -> str:
    """The queue group of a reason: a known family, else its first real clause (≤ 60 chars)."""
    clauses = [c for c in reason.split("; ") if c and not _NOT_REASONS.match(c)]
    real = [c for c in clauses if not _IDENTIFIED.match(c)] or clauses
    for clause in real:
        for pattern, name in REASON_GROUPS:
            if pattern.search(clause):
                return name
    if not real:
        return "Revisión del personal"
    head = reason_text(real[0]).split(":")[0].split("(")[0].strip()
    return head[:60] or "Revisión del personal"


@dataclass
class Labels:
    """The vocabulary of one installation: codes of its machines, catalogue and mailboxes."""

    states: dict[str, str]
    tramites: dict[str, str]
    fields: Any
    mailboxes: dict[str, str]
    people: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, app: App, people: Mapping[str, str] | None = None) -> Labels:
        """Built from the app's machines, catalogue, field vocabulary and mailboxes.

        `people` maps usernames to full names (users table) for the timeline.
        """
        states: dict[str, str] = {}
        for machine in app.machines.values():
            for state in machine.states:
                states.setdefault(state.name, state.label or humanize(state.name))
        return cls(
            states=states,
            tramites={t.id: t.name for t in app.catalogue},
            fields=app.vocabulary,
            mailboxes={
                m.name: MAILBOX_NAMES.get(m.name, humanize(m.name)) for m in app.settings.mailboxes
            },
            people=dict(people or {}),
        )

    def state(self, code: str | None) -> str:
        """The Spanish label of a case state (from the machines), else the code humanized ('' for
        None).
        """
        return self.states.get(code or "", humanize(code or ""))

    def tramite(self, code: str | None) -> str:
        """The procedure's name, the code humanized when unknown, 'Sin trámite' for None."""
        return self.tramites.get(code or "", humanize(code or "")) if code else "Sin trámite"

    def mailbox(self, code: str | None) -> str:
        """The mailbox's display name, the code humanized when unknown, '—' for None."""
        return self.mailboxes.get(code or "", humanize(code or "")) if code else "—"

    def flag(self, code: str) -> str:
        """The Spanish label of a case flag (FLAGS), else the code humanized."""
        return FLAGS.get(code, humanize(code))

    def missing(self, codes: Iterable[str]) -> list[str]:
        """Missing requirement ids → their labels (field vocabulary; signed document)."""
        return [
            SIGNED_DOCUMENT_LABEL if c == SIGNED_DOCUMENT else str(self.fields.label(c))
            for c in codes
        ]

    def actor(self, actor: str) -> str:
        """'usuario:ana' → 'Ana Quispe'; 'sistema' → 'Sistema'."""
        if actor.startswith("usuario:"):
            username = actor.removeprefix("usuario:")
            return self.people.get(username, username)
        return "Sistema" if actor == "sistema" else actor

    def document(self, kind: str) -> str:
        """The Spanish name of a document kind (DOCUMENTS), else the kind humanized."""
        return DOCUMENTS.get(kind, humanize(kind))

    def signature(self, status: str | None) -> str:
        """The Spanish label of a signature status (valid, invalid, untrusted, unsigned, absent),
        else humanized.
        """
        return SIGNATURE.get(status or "", humanize(status or ""))

    def as_context(self) -> dict[str, Any]:
        """The template globals: `L` (this object), `dmy`, `reason_text`."""
        return {"L": self, "dmy": dmy, "reason_text": reason_text}
