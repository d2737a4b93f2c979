"""The intake decision as a table of small named checks (in the style of Mailman's rules).

Each check has a `name`, a `description` and `check(facts)` returning a `Finding` (with its
reason, in Spanish) or None. `TABLE` lists, in order, what a finding of each check does:

- `review`:  staff must decide; the request goes to the exception queue with the reason.
- `observe`: requirements are missing; the applicant gets one itemised observation.
- `flag`:    the case proceeds, marked for staff with the finding's flags.
- `note`:    the reason is recorded and shown; nothing else changes.

The disposition is `review` if any review finding, else `observe` if anything is missing, else
`accept`. The same table decides a new request, a reply completing an observation and
`mailflow check`. A name in the table that is not a registered check fails at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailflow.intake.findings import (
    Action,
    Check,
    Facts,
    Finding,
)
from mailflow.intake.firma import (
    BadSignature,
    GoodSignature,
    Handwritten,
    HandwrittenForReview,
    OtherSigner,
    SignedNotEscrito,
)
from mailflow.reasons import quote
from mailflow.vocabulary import Disposition


@dataclass(frozen=True)
class Verdict:
    """The table's result: disposition, reasons in order, missing items, flags, hits."""

    disposition: Disposition  # accept, observe or review
    reasons: tuple[str, ...]
    missing: tuple[str, ...]
    flags: tuple[str, ...]
    hits: tuple[str, ...] = field(default_factory=tuple)


ACTIVE_CONTENT = "contenido_activo"  # check name and case flag (issue 14)


class DamagedMessage:
    """Intake check `mensaje_danado`: the message has parsing defects that are not soft
    (`defects.SOFT`), so staff must look at it.
    """

    name = "mensaje_danado"
    description = "El mensaje llegó dañado (MIME roto, truncado): el personal debe mirarlo."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding listing each hard defect ('Problema en el mensaje: …'), or None when
        `facts.defects` is empty.
        """
        if not facts.defects:
            return None
        return Finding("; ".join(f"Problema en el mensaje: {d}" for d in facts.defects))


class ActiveContent:
    """Intake check on attached PDFs with JavaScript, embedded files or open actions (`pdfactive`)."""

    name = ACTIVE_CONTENT
    description = (
        "Un PDF adjunto trae JavaScript, archivos incrustados o acciones de inicio: el personal "
        "lo abre en un visor seguro."
    )

    def check(self, facts: Facts) -> Finding | None:
        """A Finding with the active-content reasons and the ACTIVE_CONTENT flag, or None when no
        PDF has any.
        """
        if not facts.active_content:
            return None
        return Finding("; ".join(facts.active_content), flags=(ACTIVE_CONTENT,))


class UnreadableAttachment:
    """Intake check `adjunto_ilegible`: a PDF could not be read (damaged, too complex, over its time
    budget); encrypted PDFs are left to other checks.
    """

    name = "adjunto_ilegible"
    description = "Un PDF adjunto no se pudo leer (dañado o demasiado complejo)."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding naming each unreadable PDF and why ('Adjunto ilegible: «x.pdf»: …'), or None."""
        bad = [
            f"{quote(d.name)}: {d.content.error}"
            for d in facts.documents
            if d.content is not None and d.content.error and not d.content.encrypted
        ]
        return Finding("; ".join(f"Adjunto ilegible: {b}" for b in bad)) if bad else None


class NoSender:
    """Intake check `sin_remitente`: there is no From address to answer."""

    name = "sin_remitente"
    description = "El mensaje no tiene una dirección de remitente a la que responder."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding when `facts.sender` is empty, else None."""
        if facts.sender:
            return None
        return Finding("El mensaje no tiene un remitente válido al que responder")


class InvalidValues:
    """Intake check `datos_invalidos`: fields written with an invalid value (a date, a phone number
    …).
    """

    name = "datos_invalidos"
    description = "Datos escritos pero con un valor que no es válido (fecha, teléfono…)."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding listing 'label: why' for each invalid field, or None when every value is valid."""
        bad = [f"{facts.label(fid)}: {why}" for fid, why in facts.invalid.items()]
        return Finding("; ".join(bad)) if bad else None


class MissingRequirements:
    """Intake check `requisitos_faltantes`: required fields, attachments or the escrito are missing."""

    name = "requisitos_faltantes"
    description = "Faltan datos, adjuntos o el escrito que el trámite exige."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding naming the missing items by label and carrying their ids in `missing`, or None."""
        if not facts.missing:
            return None
        labels = ", ".join(facts.label(m) for m in facts.missing)
        return Finding(f"Faltan requisitos: {labels}", missing=facts.missing)


class NotMachineReadable:
    """Intake check: something is missing that may be in an attachment the machine cannot read
    (photo, scanned or protected PDF), so staff review it instead of the applicant being
    observed.
    """

    name = "adjunto_no_legible_por_maquina"
    description = (
        "Falta algo que quizá está en un adjunto que la máquina no puede leer (foto, PDF "
        "escaneado o protegido): el personal lo revisa en vez de observar al solicitante."
    )

    def check(self, facts: Facts) -> Finding | None:
        """A Finding naming the missing items and the opaque attachments, or None when nothing
        unwritten is missing or every attachment was read.
        """
        unwritten = [m for m in facts.missing if m not in facts.invalid]
        if not unwritten:
            return None
        opaque = [
            f"{quote(d.name)} {d.unreadable}"
            for d in facts.documents
            if d.unreadable and d.kind not in facts.tramite.required_attachments
        ]
        if not opaque:
            return None
        labels = ", ".join(facts.label(m) for m in unwritten)
        return Finding(
            f"Lo que falta ({labels}) puede estar en adjuntos que no se pueden leer por "
            f"máquina: {'; '.join(opaque)}. El personal debe revisarlos"
        )


class Extemporaneo:
    """Intake check `extemporaneo`: an appeal filed after the procedure's filing_limit_days (días
    hábiles) counted from the notification.
    """

    name = "extemporaneo"
    description = "Recurso presentado fuera del plazo contado desde la notificación."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding with the `extemporaneo` flag when `facts.extemporaneo_since` (the notification
        date) is set and the procedure has a filing limit, else None.
        """
        notified, days = facts.extemporaneo_since, facts.tramite.filing_limit_days
        if notified is None or not days:
            return None
        return Finding(
            f"Recurso extemporáneo: presentado después de {days} días hábiles desde la "
            f"notificación ({notified.isoformat()})",
            flags=("extemporaneo",),
        )


class Identity:
    """Intake check `identidad` for identity_sensitive procedures: sender and data must match the
    applicant registry (`identity` lookup).
    """

    name = "identidad"
    description = (
        "Trámites que cambian quién es una persona (identity_sensitive): el remitente y los "
        "datos deben coincidir con el registro de solicitantes."
    )

    def check(self, facts: Facts) -> Finding | None:
        """A Finding joining the registry's concerns, or None when there are none or no lookup was
        given (e.g. without a database).
        """
        if facts.identity is None:
            return None
        concerns = facts.identity(facts.tramite, facts.fields, facts.sender)
        return Finding("; ".join(concerns)) if concerns else None


CHECKS: dict[str, Check] = {}
for _check in (
    DamagedMessage(),
    ActiveContent(),
    UnreadableAttachment(),
    NoSender(),
    InvalidValues(),
    MissingRequirements(),
    NotMachineReadable(),
    Handwritten(),
    HandwrittenForReview(),
    BadSignature(),
    OtherSigner(),
    SignedNotEscrito(),
    GoodSignature(),
    Extemporaneo(),
    Identity(),
):
    if _check.name in CHECKS:
        raise RuntimeError(f"comprobación repetida: {_check.name}")
    CHECKS[_check.name] = _check

TABLE: tuple[tuple[str, Action], ...] = (
    ("firma_valida", "note"),
    ("datos_invalidos", "note"),
    ("requisitos_faltantes", "observe"),
    ("mensaje_danado", "review"),
    (ACTIVE_CONTENT, "review"),
    ("adjunto_ilegible", "review"),
    ("sin_remitente", "review"),
    ("adjunto_no_legible_por_maquina", "review"),
    ("firma_manuscrita", "flag"),
    ("firma_manuscrita_revision", "review"),
    ("firma_no_valida", "review"),
    ("firmante_distinto", "review"),
    ("firmado_no_es_escrito", "review"),
    ("extemporaneo", "review"),
    ("identidad", "review"),
)
for _name, _ in TABLE:
    if _name not in CHECKS:
        raise RuntimeError(f"la tabla de decisión nombra una comprobación inexistente: {_name}")


def run_table(
    facts: Facts, table: Sequence[tuple[str, Action]] = TABLE, *, skip: Sequence[str] = ()
) -> Verdict:
    """Walk `table` over `facts`; returns the disposition with every hit's reason, in order.

    Checks named in `skip` are not run (e.g. identity, which needs the registry, or
    `requisitos_faltantes` once it has been decided otherwise).
    """
    reasons: list[str] = []
    review: list[str] = []
    missing: list[str] = []
    flags: list[str] = ["refugiado"] if facts.refugiado else []
    hits: list[str] = []
    for name, action in table:
        if name in skip:
            continue
        found = CHECKS[name].check(facts)
        if found is None:
            continue
        hits.append(name)
        flags.extend(found.flags)
        if action == "review":
            review.append(found.reason)
            continue
        reasons.append(found.reason)
        if action == "observe":
            missing.extend(found.missing)
    if review:
        disposition = Disposition.REVIEW
        reasons.extend(review)
    elif missing:
        disposition = Disposition.OBSERVE
    else:
        disposition = Disposition.ACCEPT
        reasons.append("Requisitos completos")
    return Verdict(
        disposition,
        tuple(reasons),
        tuple(dict.fromkeys(missing)),
        tuple(dict.fromkeys(flags)),
        tuple(hits),
    )
