"""Cases: open one from an intake decision; apply any event (mail or staff) through one door."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from mailflow.cases.effects import EffectInput, add_flags, fresh_thread, run_effects
from mailflow.cases.machines import GuardContext, IllegalTransition, TransitionResult
from mailflow.clock import deadlines
from mailflow.documents.templates import ReceivedFile
from mailflow.errors import MailflowError
from mailflow.intake.decision import SIGNED_DOCUMENT, SIGNED_DOCUMENT_LABEL, Decision
from mailflow.store.audit import SYSTEM, record, record_now
from mailflow.store.bulkrows import adopt
from mailflow.store.models import Case, InboxMessage
from mailflow.store.numbering import format_expediente, next_number
from mailflow.store.search import search_text

if TYPE_CHECKING:
    from mailflow.app import App
    from mailflow.clock.dias_habiles import Calendario

EXPEDIENTE_COUNTER = "expediente"
_CASES = cast(Table, Case.__table__)
_CASE_COLUMNS = frozenset(c.key for c in _CASES.columns if c.key != "id")
# what an insert through the ORM writes for columns `open_case` leaves unset
_CASE_DEFAULTS: dict[str, Any] = {
    "machine_version": 1, "assignee_id": None, "priority": 0, "due_date": None,
    "closed_at": None, "sla": {}, "fields": {}, "flags": [], "mailbox": None, "office": None,
    "applicant_email": None, "applicant_name": None, "applicant_document": None,
}  # fmt: skip
_INSERT_CASE = insert(_CASES).returning(_CASES.c.id)
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
    office = receiving_office(session, app, inbox_message_id, decision.tramite)
    app_cal = app.calendario_de(office)
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
        office=office,
        received_at=received,
        legal_receipt_day=app_cal.legal_receipt_day(received),
        fields=fields,
        flags=[],
        sla={},
        created_at=now,
        updated_at=now,
    )
    add_flags(case, decision.flags)
    if office != app.calendarios.default_office:
        recheck_extemporaneo(app, case, app_cal)
    _insert_case(session, case)
    deadlines.fresh_case_timers(session, case.id)
    fresh_thread(session, case)
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
    route_new_case(session, app, case, now, inbox_message_id, new_case=True)
    return case


def _insert_case(session: Session, case: Case) -> None:
    """Insert a new case with one INSERT … RETURNING id (no unit of work) and attach it to
    `session` as persistent (mailflow.store.bulkrows.adopt), with the row the ORM would have
    written: the same defaults, `search_text` and first `lock_version`."""
    values = {
        **_CASE_DEFAULTS,
        **{k: v for k, v in vars(case).items() if k in _CASE_COLUMNS},
        "lock_version": 1,  # the version_id_col's first value (SQLAlchemy's default counter)
    }
    values["search_text"] = search_text(
        values["number"],
        values["applicant_name"],
        values["applicant_document"],
        values["applicant_email"],
        values["fields"],
    )  # fmt: skip (as models._fold_search_text does before an ORM insert)
    for key in ("sla", "fields", "flags"):
        values[key] = _plain(values[key])
    case.id = int(session.connection().execute(_INSERT_CASE, values).scalar_one())
    for key, value in values.items():
        if key not in vars(case):
            setattr(case, key, value)
    case.search_text = values["search_text"]
    adopt(session, case)


def _plain(value: Any) -> Any:
    """A JSON column's value as plain dicts and lists (the Mutable wrappers are subclasses)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def route_new_case(
    session: Session,
    app: App,
    case: Case,
    now: dt.datetime,
    inbox_message_id: int | None,
    *,
    new_case: bool = False,
) -> None:
    """Suggest vulnerability signals (mailflow.cases.priority) and assign an officer by
    rules/assignment.yaml (mailflow.cases.assignment); both audited, in the caller's transaction.
    `new_case`: the case was just created from `inbox_message_id` (see detect_signals)."""
    from mailflow.cases import assignment, priority

    priority.detect_signals(session, app, case, now, inbox_message_id, new_case=new_case)
    assignment.assign_new_case(
        session,
        app.assignment_rules,
        case,
        default_office=app.settings.calendar.default_office,
        now=now,
        actor=SYSTEM,
    )


def receiving_office(session: Session, app: App, inbox_message_id: int | None, tramite: str) -> str:
    """The office whose legal calendar applies: that of the mailbox that received the message
    (config `mailboxes[].office`), else that of the procedure's mailbox, else the default."""
    cals = app.calendarios
    received_by = None
    if inbox_message_id is not None:
        row = session.get(InboxMessage, inbox_message_id)
        received_by = row.mailbox if row is not None else None
    if received_by in cals.mailbox_offices:
        return cals.office_of_mailbox(received_by)
    return cals.office_of_mailbox(app.catalogue.get(tramite).mailbox)


def recheck_extemporaneo(app: App, case: Case, cal: Calendario) -> bool | None:
    """Set or clear the case's `extemporaneo` flag by `cal`; returns the new value, or None
    when the procedure has no filing limit or the case no valid fecha_notificacion."""
    tramite = app.catalogue.tramites.get(case.tramite)
    raw = (case.fields or {}).get("fecha_notificacion")
    if isinstance(raw, dict):
        raw = raw.get("value")
    if tramite is None or not tramite.filing_limit_days or not isinstance(raw, str):
        return None
    try:
        notified = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    late = cal.is_extemporaneo(notified, case.received_at, tramite.filing_limit_days)
    flags = [f for f in (case.flags or []) if f != "extemporaneo"]
    case.flags = [*flags, "extemporaneo"] if late else flags
    return late


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


def engine_event(app: App, case: Case, role: str) -> str:
    """The event the case's machine names for an engine role (machines.ENGINE_EVENTS, the
    `events:` of its YAML); IllegalTransition when the machine names none."""
    event = app.machines[case.machine].event_for(role)
    if event is None:
        raise IllegalTransition(role, case.state)
    return event


def disposition_of(app: App, case: Case) -> str:
    """The disposition its current state declares (accept, observe, review, inform)."""
    return app.machines[case.machine].state(case.state).disposition


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
    flush: bool = True,
) -> TransitionResult:
    """Fire `event` on `case` as `actor` ("sistema" or "usuario:<name>") and run its effects.

    Everything happens in the caller's transaction: the transition, its audit event, the
    replies in the outbox, documents and timers. An illegal event raises IllegalTransition
    before anything is written, and so does MailflowError when the transition declares
    `reason: required` and `reason` is blank. A concurrent change of the same case makes the flush fail
    (optimistic lock on Case.lock_version), so the caller's transaction rolls back whole.
    `flush=False` leaves the last flush to the caller's next one (the mail pipeline's `finish`,
    at the end of the message's savepoint, with the inbox row's own update: the case's changed
    columns are then one UPDATE under the same version check, mailflow.store.coreflush).
    """
    lifecycle = app.lifecycles[case.machine]
    if not reason.strip() and app.machines[case.machine].needs_reason(case.state, event):
        raise MailflowError("esta acción exige indicar el motivo")
    context = guard_context(session, app, case, actor, now, context_overrides)
    result = lifecycle.fire(case, event, context=context)
    if result.final and case.closed_at is None:
        case.closed_at = now
    case.updated_at = now
    row = record_now(
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
    # the event's id keys the effects; the case's version check happens at the next flush
    # (an autoflush during the effects, at the latest the one below), but before any
    # document is written to disk when the transition issues one
    if any(e.kind == "issue_document" for e in result.effects):
        session.flush()
    given = EffectInput(actor, reason, tuple(missing), tuple(received_files), inbox_message_id)
    run_effects(session, app, case, result, row, now, given)
    if flush:
        session.flush()
    return result


def _effect_json(effect: Any) -> dict[str, Any]:
    return {"kind": effect.kind, "arg": effect.arg}
