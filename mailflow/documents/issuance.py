"""Issuance policy: may the system issue and deliver a procedure's oficio without a clerk?"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from mailflow.clock.dias_habiles import Calendario
from mailflow.intake.catalogue import Tramite
from mailflow.intake.values import NATIONALITIES, normalise
from mailflow.registry.applicants import find_applicant, is_registered_sender
from mailflow.registry.status import STATUS_LABELS, RegistryStatus, status_code
from mailflow.store.audit import record
from mailflow.store.models import Applicant, Case
from mailflow.textnorm import fold

if TYPE_CHECKING:
    from mailflow.app import App

ALERT_FLAG = "alerta_viaje"


@dataclass(frozen=True)
class Facts:
    """What the policy looks at: the request, its sender, its signature and the registry row."""

    tramite: Tramite
    fields: Mapping[str, Any]
    sender: str | None
    complete: bool
    signature_status: str  # valid | untrusted | invalid | unsigned | absent
    signer: str | None
    person: Applicant | None
    received: dt.datetime


class Condition(Protocol):
    """One named condition of `issue: automatic` (rules/*.yaml `conditions:`)."""

    @property
    def name(self) -> str:
        """The condition's id as written under `conditions:` in rules/*.yaml."""
        ...

    @property
    def description(self) -> str:
        """What the condition requires, in Spanish, for the case page and the policy check."""
        ...

    def check(self, facts: Facts) -> str | None:
        """None when the condition holds, else the Spanish reason it does not."""


@dataclass(frozen=True)
class _Rule:
    name: str
    description: str
    test: Any

    def check(self, facts: Facts) -> str | None:
        result: str | None = self.test(facts)
        return result


def _complete(f: Facts) -> str | None:
    return None if f.complete else "faltan requisitos"


def _names_match(a: str, b: str) -> bool:
    """Every word of the shorter name appears in the longer one (accents and case ignored)."""
    wa, wb = set(fold(a).split()), set(fold(b).split())
    small, large = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return bool(small) and len(small) >= 2 and small <= large


_SIGNATURE_WORDS = {  # why a signature does not allow automatic issuance (check's statuses)
    "absent": "no se adjuntó el escrito firmado",
    "unsigned": "el escrito no tiene firma digital (la firma manuscrita la confirma el personal)",
    "untrusted": "la firma digital no es de una entidad de certificación de confianza",
    "invalid": "la firma digital no es válida: el documento cambió después de firmarse",
}


def _signature(f: Facts) -> str | None:
    if not f.tramite.signature_required:
        return None
    if f.signature_status != "valid":
        return _SIGNATURE_WORDS.get(f.signature_status, "la firma digital no pudo verificarse")
    name = str(f.fields.get("nombres_apellidos") or "")
    if not f.signer or not name or not _names_match(f.signer, name):
        return f"la firma es de «{f.signer or 'firmante sin nombre'}», no del solicitante"
    return None


def _recognised(f: Facts) -> str | None:
    if f.person is None:
        return "el solicitante no figura en el registro de la comisión"
    code = status_code(f.person.status)
    if code is not RegistryStatus.REFUGIADO_RECONOCIDO:
        label = STATUS_LABELS[code] if code else f"«{f.person.status or 'sin estado'}»"
        return f"en el registro su condición es {label}, no refugiado(a) reconocido(a)"
    return None


def _same(kind: str, given: Any, known: str | None) -> bool:
    value = normalise(kind, str(given))[0] if given else None
    return bool(value and known and value.upper() == known.upper())


def _document(f: Facts) -> str | None:
    if f.person is None:
        return "no hay registro con el que comparar el carné o documento"
    carne, doc = f.fields.get("carne_extranjeria"), f.fields.get("documento_identidad")
    if carne and _same("carne", carne, f.person.carne_extranjeria):
        return None
    if doc and _same("document", doc, f.person.document_number):
        return None
    return "el carné o documento indicado no coincide con el del registro"


def _sender(f: Facts) -> str | None:
    if f.person is None:
        return "no hay correo registrado con el que comparar el remitente"
    if not is_registered_sender(f.person, f.sender):
        return (
            f"el correo remitente {f.sender or '(vacío)'} no es el registrado para la persona; "
            "la copia solo se envía al correo registrado"
        )
    return None


CONDITIONS: dict[str, Condition] = {
    r.name: r
    for r in (
        _Rule(
            "requisitos_completos", "Todos los requisitos del trámite están presentes", _complete
        ),
        _Rule("firma_valida", "Firma digital válida y del solicitante, si se exige", _signature),
        _Rule("refugiado_reconocido", "Registrado como refugiado(a) reconocido(a)", _recognised),
        _Rule("documento_coincide", "Carné o documento igual al del registro", _document),
        _Rule("remitente_registrado", "Escribe desde el correo registrado", _sender),
    )
}
"""The closed vocabulary of `conditions:` (catalogue.Condition lists the same names)."""


@dataclass(frozen=True)
class Assessment:
    """The policy's answer: issue automatically or not, why, and alerts for staff."""

    automatic: bool
    reasons: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    checked: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One Spanish sentence for the case's trail."""
        if self.automatic:
            met = [CONDITIONS[c].description.lower() for c in self.checked if c in CONDITIONS]
            return "Emisión automática; se cumple todo: " + "; ".join(met)
        if not self.reasons:
            return "Emisión con aprobación del personal (política del trámite)"
        return "Emisión con aprobación del personal: " + "; ".join(self.reasons)


def assess(facts: Facts, calendario: Calendario) -> Assessment:
    """Apply the procedure's `issue:` policy to `facts`; alerts are computed for every policy.

    Returns automatic=True only for `issue: automatic` when every listed condition holds.
    """
    tramite = facts.tramite
    known = facts.person.nationality if facts.person is not None else None
    alerts = travel_alerts(tramite, facts.fields, facts.received, calendario, known)
    failed = [why for c in tramite.conditions if (why := CONDITIONS[c].check(facts))]
    automatic = tramite.issue == "automatic" and not failed and not alerts
    reasons = tuple(failed) + alerts
    return Assessment(automatic, reasons, alerts, tuple(tramite.conditions))


def facts_for(
    session: Session,
    tramite: Tramite,
    fields: Mapping[str, Any],
    *,
    sender: str | None,
    complete: bool,
    signature_status: str,
    signer: str | None,
    received: dt.datetime,
) -> Facts:
    """Facts with the registry row found by carné, then document (never by sender address)."""
    person = find_applicant(
        session,
        document=fields.get("documento_identidad"),
        carne=fields.get("carne_extranjeria"),
    )
    return Facts(tramite, fields, sender, complete, signature_status, signer, person, received)


def travel_alerts(
    tramite: Tramite,
    fields: Mapping[str, Any],
    received: dt.datetime,
    cal: Calendario,
    registered_nationality: str | None = None,
) -> tuple[str, ...]:
    """Alerts for an autorización de viaje (rules `alerts:`): a departure already past or
    sooner than the procedure's term (días hábiles from the legal receipt day) allows, and a
    destination that is the applicant's country of nationality (a cessation risk, Ley 27891
    art. 9: re-establishing oneself in the country of origin); the nationality is the request's,
    else the registry's."""
    out: list[str] = []
    departure = _date(fields.get("fecha_salida"))
    today = cal.local(received).date()
    if "salida_pasada" in tramite.alerts and departure and departure < today:
        out.append(f"La fecha de salida ({departure.isoformat()}) ya pasó")
    elif "salida_antes_del_plazo" in tramite.alerts and departure and tramite.term_days:
        due = cal.due_date(received, tramite.term_days)
        if departure < due:
            out.append(
                f"La salida ({departure.isoformat()}) es anterior al plazo de "
                f"{tramite.term_days} días hábiles para atenderla ({due.isoformat()})"
            )
    if "destino_pais_de_nacionalidad" in tramite.alerts:
        nationality = fields.get("nacionalidad") or registered_nationality
        country = _nationality_country(nationality, fields.get("destino"))
        if country:
            out.append(
                f"El destino ({fields.get('destino')}) es el país de su nacionalidad: "
                "riesgo de cesación de la condición de refugiado"
            )
    return tuple(out)


def _nationality_country(nationality: Any, destination: Any) -> str | None:
    if not nationality or not destination:
        return None
    canon = normalise("nationality", str(nationality))[0]
    countries = NATIONALITIES.get(canon or "", ())
    words = " " + re.sub(r"[^a-z ]+", " ", fold(str(destination))) + " "
    for country in countries:
        if f" {country} " in words:
            return country
    return None


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def case_overrides(
    session: Session,
    app: App,
    case: Case,
    fields: Mapping[str, Any],
    *,
    sender: str | None,
    complete: bool,
    signature_status: str,
    signer: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Assess the case's procedure and return the guard overrides (`issue_automatic`,
    `registered_sender`); the decision and its reasons are audited on the case and alerts
    become case flags. In the caller's transaction. Only procedures whose product is an oficio
    are assessed for issuance; only those with `updates_registry` look at the sender."""
    tramite = app.catalogue.get(case.tramite)
    if tramite.product != "oficio":
        if not tramite.updates_registry:
            return {"issue_automatic": False}
        person = facts_for(session, tramite, fields, sender=sender, complete=complete,
                           signature_status=signature_status, signer=signer,
                           received=case.received_at).person  # fmt: skip
        registered = person is not None and is_registered_sender(person, sender)
        return {"issue_automatic": False, "registered_sender": registered}
    facts = facts_for(
        session,
        tramite,
        fields,
        sender=sender,
        complete=complete,
        signature_status=signature_status,
        signer=signer,
        received=case.received_at,
    )
    result = assess(facts, app.calendario)
    if result.alerts and ALERT_FLAG not in (case.flags or []):
        case.flags = [*(case.flags or []), ALERT_FLAG]
    record(
        session,
        "policy",
        result.summary(),
        at=now,
        case_id=case.id,
        data={
            "issue": tramite.issue,
            "automatic": result.automatic,
            "reasons": list(result.reasons),
            "alerts": list(result.alerts),
            "applicant_id": facts.person.id if facts.person else None,
        },
    )
    return {"issue_automatic": result.automatic}
