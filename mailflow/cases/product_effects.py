"""Effects that hand the product over: documents to Migraciones through the delivery channel,
request data into the registry, and the time the product reached the applicant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailflow.cases.effect_run import EffectRun, audit
from mailflow.cases.reply_effects import case_documents, reply_context
from mailflow.cases.staff_effects import add_flag
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.cases.machine_terms import Effect


def deliver(run: EffectRun, effect: Effect) -> None:
    """Effect `deliver`: send the case's issued documents (the procedure's kinds, else the oficio)
    to Migraciones through the configured channel, audited as `delivery`. When no document is
    issued or the channel is not configured, flags `envio_migraciones_pendiente` and audits an
    `exception` instead of raising.
    """
    from mailflow.documents.channel import Parcel, channel_for
    from mailflow.errors import ConfigError

    app, case = run.app, run.case
    tramite = app.catalogue.get(case.tramite)
    kinds = tramite.documents or ("oficio",)
    attachments = case_documents(run, kinds)
    if not attachments:
        audit(run, AuditKind.EXCEPTION, "No hay documento emitido que enviar a Migraciones")
        add_flag(case, "envio_migraciones_pendiente")
        return
    context = {**reply_context(run), "documents": [a.filename for a in attachments]}
    text = app.templates.get_template("channel/oficio_migraciones.txt.j2").render(**context)
    parcel = Parcel(
        case_id=case.id,
        case_number=case.number,
        mailbox=case.mailbox,
        kind="oficio_migraciones",
        subject=f"[{case.number}] {tramite.name}: Oficio de la {app.settings.institution.short_name}",
        text=text,
        dedupe_key=f"{case.id}:{run.event_row.id}:migraciones",
        attachments=attachments,
    )
    try:
        note = channel_for(app.settings).deliver(run.session, parcel, run.now)
    except ConfigError as exc:
        add_flag(case, "envio_migraciones_pendiente")
        audit(run, AuditKind.EXCEPTION, f"Oficio no enviado a Migraciones: {exc}")
        return
    audit(run, AuditKind.DELIVERY, f"Oficio a Migraciones {note}", {"target": effect.arg})


def apply_registry_update(run: EffectRun, _: Effect) -> None:
    """Write the procedure's `updates_registry` fields into the person's registry row (audited
    before/after, listed in the reply). A person absent from the registry is added only on a
    staff confirmation (staff verified the identity) and needs a name and a carné or document."""
    from mailflow.errors import MailflowError
    from mailflow.registry.applicants import (
        FIELD_TO_ATTR,
        TARGET_LABELS,
        apply_data_update,
        find_applicant,
    )
    from mailflow.store.models import Applicant

    app, case = run.app, run.case
    tramite = app.catalogue.get(case.tramite)
    if not tramite.updates_registry:
        return  # the procedure writes nothing in the registry (cambio de clave, renuncia …)
    fields = dict(case.fields or {})
    person = find_applicant(
        run.session,
        document=fields.get("documento_identidad"),
        carne=fields.get("carne_extranjeria"),
    )
    wanted: dict[str, Any] = {k: v for k, v in fields.items() if k in tramite.updates_registry}
    if person is None:
        name = fields.get("nombres_apellidos")
        identity = fields.get("carne_extranjeria") or fields.get("documento_identidad")
        if run.given.automatic or not name or not identity:
            raise MailflowError(
                "la persona no figura en el registro y la solicitud no trae nombre y carné o "
                "documento para registrarla: corrija el registro antes de confirmar"
            )
        person = Applicant(full_name=str(name))
        run.session.add(person)
        run.session.flush()
        wanted = {k: v for k, v in fields.items() if k in FIELD_TO_ATTR}
        audit(run, AuditKind.DATA_UPDATE, "Persona agregada al registro tras confirmar su identidad", {
            "applicant_id": person.id,
        })  # fmt: skip
    changes = apply_data_update(run.session, person, wanted, run.given.actor, case, run.now)
    run.changes = [f"{TARGET_LABELS[a]}: {after}" for a, (_, after) in changes.items()]
    if not changes:
        audit(run, AuditKind.DATA_UPDATE, "Registro sin cambios: los datos ya figuraban así")


def record_delivery(run: EffectRun, _: Effect) -> None:
    """Effect `record_delivery`: store the product's delivery time in case.sla['entregado_at'] (ISO
    8601) and audit `delivered`.
    """
    run.case.sla = {**(run.case.sla or {}), "entregado_at": run.now.isoformat()}
    audit(
        run,
        AuditKind.DELIVERED,
        "Producto entregado al solicitante (aceptado por su servidor de correo)",
    )
