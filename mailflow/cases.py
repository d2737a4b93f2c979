"""Cases: open one from an intake decision; apply any event (mail or staff) through one door."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow import deadlines
from mailflow.audit import record
from mailflow.decision import SIGNED_DOCUMENT, SIGNED_DOCUMENT_LABEL, Decision
from mailflow.documents import ReceivedFile
from mailflow.effects import EffectInput, add_flags, run_effects
from mailflow.machines import GuardContext, TransitionResult
from mailflow.models import Case
from mailflow.numbering import format_expediente, next_number

if TYPE_CHECKING:
    from mailflow.app import App

EXPEDIENTE_COUNTER = "expediente"
STAFF_PREFIX = "usuario:"


def staff_actor(username: str) -> str:
    """The audit name of a staff user: "usuario:ana"."""
    return f"{STAFF_PREFIX}{username}"


def actor_role(actor: str) -> str:
    """The machine's actor kind for an audit actor: "staff" for users, else "system"."""
    return "staff" if actor.startswith(STAFF_PREFIX) else "system"


def missing_labels(app: App, missing: Sequence[str]) -> tuple[str, ...]:
    """Spanish labels of missing requirement ids, for the observación."""
    return tuple(
        SIGNED_DOCUMENT_LABEL if m == SIGNED_DOCUMENT else app.vocabulary.label(m) for m in missing
    )


def open_case(
    session: Session,
    app: App,
    decision: Decision,
    *,
    received: dt.datetime,
    applicant_email: str | None,
    applicant_name: str | None = None,
    inbox_message_id: int | None = None,
    now: dt.datetime,
) -> Case:
    """Create the case for a classified request (number taken last: it serialises workers)."""
    if decision.tramite is None:
        raise ValueError("no se puede abrir un expediente sin trámite identificado")
    app_cal = app.calendario
    tramite = app.catalogue.get(decision.tramite)
    definition = app.machines[tramite.machine]
    fields = dict(decision.fields)
    year = app_cal.local(received).year
    seq = next_number(session, EXPEDIENTE_COUNTER, year)
    case = Case(
        number=format_expediente(year, seq),
        year=year,
        seq=seq,
        tramite=tramite.id,
        machine=definition.id,
        machine_version=definition.version,
        state=definition.initial,
        applicant_email=(applicant_email or "").lower() or None,
        applicant_name=fields.get("nombres_apellidos") or applicant_name or None,
        applicant_document=fields.get("documento_identidad") or fields.get("carne_extranjeria"),
        mailbox=tramite.mailbox,
        received_at=received,
        legal_receipt_day=app_cal.legal_receipt_day(received),
        fields=fields,
        flags=[],
        sla={},
        created_at=now,
        updated_at=now,
    )
    add_flags(case, decision.flags)
    session.add(case)
    session.flush()
    record(
        session,
        "intake",
        "; ".join(decision.reasons),
        at=now,
        case_id=case.id,
        inbox_message_id=inbox_message_id,
        to_state=case.state,
        data={"decision": decision.as_json(), "number": case.number},
    )
    return case


CARGO_ISSUED_FLAG = "cargo_emitido"  # set by the machines' `flag: cargo_emitido` effect


def guard_context(
    session: Session,
    app: App,
    case: Case,
    actor: str,
    now: dt.datetime,
    overrides: Mapping[str, Any] | None = None,
) -> GuardContext:
    """What guards see: the procedure's facts, the case's flags, the subsanación window."""
    tramite = app.catalogue.tramites.get(case.tramite)
    ctx = GuardContext(
        actor=actor_role(actor),
        requirements_complete=False,
        signature_required=bool(tramite and tramite.signature_required),
        signature_status="absent",
        extemporaneo="extemporaneo" in (case.flags or []),
        subsanacion_expired=deadlines.subsanacion_expired(session, case, now),
        documents=frozenset(tramite.documents if tramite else ()),
        cargo_issued=CARGO_ISSUED_FLAG in (case.flags or []),
    )
    return dataclasses.replace(ctx, **dict(overrides or {}))


def apply_event(
    session: Session,
    app: App,
    case: Case,
    event: str,
    *,
    actor: str,
    now: dt.datetime,
    reason: str = "",
    context_overrides: Mapping[str, Any] | None = None,
    missing: Sequence[str] = (),
    received_files: Sequence[ReceivedFile] = (),
    inbox_message_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> TransitionResult:
    """Fire `event` on `case` as `actor` ("sistema" or "usuario:<name>") and run its effects.

    Everything happens in the caller's transaction: the transition, its audit event, the
    replies in the outbox, documents and timers. An illegal event raises IllegalTransition
    before anything is written. A concurrent change of the same case makes the flush fail
    (optimistic lock on Case.lock_version), so the caller's transaction rolls back whole.
    """
    lifecycle = app.lifecycles[case.machine]
    context = guard_context(session, app, case, actor, now, context_overrides)
    result = lifecycle.fire(case, event, context=context)
    if result.final and case.closed_at is None:
        case.closed_at = now
    case.updated_at = now
    row = record(
        session,
        "transition",
        reason or (result.transition.label or ""),
        at=now,
        actor=actor,
        case_id=case.id,
        inbox_message_id=inbox_message_id,
        event=event,
        from_state=result.source,
        to_state=result.dest,
        data={"effects": [_effect_json(e) for e in result.effects], **dict(data or {})},
    )
    session.flush()  # the event id keys the effects; the case's version check happens here
    given = EffectInput(actor, reason, tuple(missing), tuple(received_files))
    run_effects(session, app, case, result, row, now, given)
    session.flush()
    return result


def _effect_json(effect: Any) -> dict[str, Any]:
    return {"kind": effect.kind, "arg": effect.arg}
