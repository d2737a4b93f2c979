"""Process one stored inbox message: triage, thread to its case or open one, apply events."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.audit import SYSTEM, record
from mailflow.automatic import detect_automatic
from mailflow.cases import apply_event, missing_labels, open_case
from mailflow.decision import Decision, SignatureSummary
from mailflow.documents import ReceivedFile
from mailflow.effects import add_flags
from mailflow.errors import MailflowError
from mailflow.identity import registry_lookup
from mailflow.machines import IllegalTransition
from mailflow.message import ParsedMessage
from mailflow.models import Case, CaseEvent, CaseMessage, InboxMessage
from mailflow.parse import parse_message

if TYPE_CHECKING:
    from mailflow.app import App

CASE_NUMBER = re.compile(r"\bEXP-(\d{4})-(\d{6})\b", re.IGNORECASE)
RESULT_DISPOSITION = {"observado": "observe", "en_revision": "review"}


@dataclass(frozen=True)
class Outcome:
    """What happened to a message: the inbox row's disposition, procedure and case."""

    disposition: str
    tramite: str | None = None
    case_id: int | None = None


def process_inbox_message(app: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
    """Decide `row` and do everything that follows, in `session`'s transaction; idempotent."""
    if row.status == "done":
        return
    limits = app.settings.limits
    msg = parse_message(
        row.raw,
        max_parts=limits.max_parts,
        max_attachment_bytes=limits.max_attachment_bytes,
        max_text_chars=limits.max_text_chars,
    )
    _finish(session, row, _route(app, session, row, msg, now), now)


def classify_as(
    app: App, session: Session, row: InboxMessage, tramite: str, now: dt.datetime
) -> Outcome:
    """Staff decided the procedure: read the message as if its subject were the official ASUNTO,
    so fields, requirements and signature are assessed exactly as for a well-titled request."""
    msg = parse_message(row.raw, max_parts=app.settings.limits.max_parts)
    official = dataclasses.replace(msg, subject=app.catalogue.get(tramite).subject)
    decision = app.intake.decide(
        official, received=row.arrived_at, identity=registry_lookup(session)
    )
    if decision.tramite != tramite:
        raise MailflowError(f"el mensaje no pudo leerse como {app.catalogue.get(tramite).name}")
    outcome = _new_request(app, session, row, msg, decision, now)
    _finish(session, row, outcome, now)
    return outcome


def _finish(session: Session, row: InboxMessage, outcome: Outcome, now: dt.datetime) -> None:
    row.status = "done"
    row.disposition = outcome.disposition
    row.tramite = outcome.tramite
    row.case_id = outcome.case_id
    row.processed_at = now


def _route(
    app: App, session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome:
    seen = _duplicate(session, row, msg, now)
    if seen is not None:
        return seen
    intake = app.intake
    hits = detect_automatic(msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain)
    if hits:
        reasons = "; ".join(h.reason for h in hits)
        _event(session, row, now, "rule", reasons, rules=[h.rule for h in hits])
        return Outcome("ignore")
    case = _thread_case(session, msg)
    if case is not None:
        return _follow_up(app, session, row, msg, case, now)
    decision = intake.decide(msg, received=row.arrived_at, identity=registry_lookup(session))
    return _new_request(app, session, row, msg, decision, now)


def _event(
    session: Session,
    row: InboxMessage,
    now: dt.datetime,
    kind: str,
    reason: str,
    case_id: int | None = None,
    **data: Any,
) -> None:
    record(session, kind, reason, at=now, case_id=case_id, inbox_message_id=row.id, data=data)


def _duplicate(
    session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome | None:
    """The same message (by Message-ID) already processed from another inbox row."""
    if not msg.message_id:
        return None
    ids = (msg.message_id, f"<{msg.message_id}>")
    earlier = session.scalar(
        select(InboxMessage)
        .where(
            InboxMessage.message_id.in_(ids),
            InboxMessage.status == "done",
            InboxMessage.id != row.id,
        )
        .limit(1)
    )
    if earlier is None:
        known = session.scalar(
            select(CaseMessage).where(
                CaseMessage.message_id == msg.message_id, CaseMessage.direction == "in"
            )
        )
        if known is None:
            return None
        reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya está en el expediente"
        _event(session, row, now, "duplicate", reason, case_id=known.case_id)
        return Outcome("ignore", None, known.case_id)
    reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya procesado (entrada {earlier.id})"
    _event(session, row, now, "duplicate", reason, case_id=earlier.case_id)
    return Outcome("ignore", earlier.tramite, earlier.case_id)


def _thread_case(session: Session, msg: ParsedMessage) -> Case | None:
    """The case this message answers: by our Message-IDs, else by the number in the subject."""
    ids = [i for i in (*msg.in_reply_to, *msg.references) if i]
    case_id = None
    if ids:
        case_id = session.scalar(
            select(CaseMessage.case_id)
            .where(CaseMessage.message_id.in_(ids))
            .order_by(CaseMessage.id.desc())
            .limit(1)
        )
    if case_id is None:
        found = CASE_NUMBER.search(msg.subject)
        if found is None:
            return None
        number = f"EXP-{found.group(1)}-{found.group(2)}"
        case_id = session.scalar(select(Case.id).where(Case.number == number))
        if case_id is None:
            return None
    stmt = select(Case).where(Case.id == case_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _record_inbound(
    session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    message_id = msg.message_id or f"sin-id.{row.sha256[:24]}@mailflow.invalid"
    session.add(
        CaseMessage(
            case_id=case.id,
            direction="in",
            inbox_message_id=row.id,
            message_id=message_id,
            at=now,
        )
    )


def _received_files(msg: ParsedMessage) -> list[ReceivedFile]:
    return [ReceivedFile(a.filename or "adjunto", a.sha256, a.size) for a in msg.attachments]


def _follow_up(
    app: App,
    session: Session,
    row: InboxMessage,
    msg: ParsedMessage,
    case: Case,
    now: dt.datetime,
) -> Outcome:
    sender = msg.sender.lower()
    if not case.applicant_email or sender != case.applicant_email.lower():
        reason = (
            f"Mensaje que responde al expediente {case.number} enviado desde "
            f"{sender or 'un remitente desconocido'}, que no es el correo del solicitante: "
            "posible referencia falsa. No se agregó al expediente; revise antes de actuar."
        )
        _event(session, row, now, "exception", reason, case_number=case.number, sender=sender)
        return Outcome("review", case.tramite)
    _record_inbound(session, case, row, msg, now)
    if case.state == "observado":
        return _subsanar(app, session, row, msg, case, now)
    add_flags(case, ["mensaje_nuevo"])
    reason = f"Nuevo mensaje del solicitante en el expediente {case.number} ({case.state})"
    _event(session, row, now, "message", reason, case_id=case.id, subject=msg.subject)
    return Outcome("review", case.tramite, case.id)


def _stored_signature(session: Session, case: Case) -> SignatureSummary:
    decision = session.scalar(
        select(CaseEvent.data)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == "intake")
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    stored = ((decision or {}).get("decision") or {}).get("signature", {})
    return SignatureSummary(
        str(stored.get("status") or "absent"),
        stored.get("signer"),
        str(stored.get("reason") or ""),
        stored.get("file"),
    )


def _subsanar(
    app: App,
    session: Session,
    row: InboxMessage,
    msg: ParsedMessage,
    case: Case,
    now: dt.datetime,
) -> Outcome:
    """Re-check the reply merged with what the case already has (`Intake.recheck`: the same
    decision table as a new request)."""
    probe = app.intake.recheck(
        msg,
        case.tramite,
        received=now,
        filed=case.received_at,
        prior_fields=dict(case.fields or {}),
        prior_signature=_stored_signature(session, case),
        prior_flags=tuple(case.flags or ()),
        identity=registry_lookup(session),
    )
    case.fields = dict(probe.fields)
    add_flags(case, probe.flags)
    missing = list(probe.missing)
    summary = {
        "fields": probe.fields,
        "missing": missing,
        "signature": probe.signature.as_json(),
        "checks": list(probe.checks),
    }
    reason = "; ".join((*probe.reasons, f"Subsanación: faltan {len(missing)} requisitos"))
    _event(session, row, now, "intake", reason, case_id=case.id, decision=summary)
    overrides = {
        **_machine_facts(probe),
        "extemporaneo": "extemporaneo" in (case.flags or []),
    }
    if probe.disposition == "review" and not missing:
        overrides["signature_accepted"] = False  # staff must look: the machine's review branch
    try:
        result = apply_event(
            session,
            app,
            case,
            "subsanar",
            actor=SYSTEM,
            now=now,
            reason="Respuesta del solicitante a la observación",
            context_overrides=overrides,
            missing=missing_labels(app, missing),
            received_files=_received_files(msg),
            inbox_message_id=row.id,
        )
    except IllegalTransition as exc:
        _event(session, row, now, "exception", str(exc), case_id=case.id)
        return Outcome("review", case.tramite, case.id)
    return Outcome(RESULT_DISPOSITION.get(result.dest, "accept"), case.tramite, case.id)


def _new_request(
    app: App,
    session: Session,
    row: InboxMessage,
    msg: ParsedMessage,
    decision: Decision,
    now: dt.datetime,
) -> Outcome:
    reasons = "; ".join(decision.reasons)
    if decision.disposition == "ignore":
        _event(session, row, now, "rule", reasons, rules=list(decision.rule_hits))
        return Outcome("ignore")
    if decision.tramite is None:
        _event(session, row, now, "exception", reasons, decision=decision.as_json())
        return Outcome("review")
    case = open_case(
        session,
        app,
        decision,
        received=row.arrived_at,
        applicant_email=msg.sender or None,
        applicant_name=msg.sender_name or None,
        inbox_message_id=row.id,
        now=now,
    )
    _record_inbound(session, case, row, msg, now)
    common: dict[str, Any] = {
        "actor": SYSTEM,
        "now": now,
        "inbox_message_id": row.id,
        "received_files": _received_files(msg),
    }
    if decision.disposition == "inform":
        tramite = app.catalogue.get(case.tramite)
        apply_event(session, app, case, "informar", reason=tramite.inform_reason, **common)
        return Outcome("inform", case.tramite, case.id)
    if decision.disposition == "review":
        _to_review(
            session, app, case, reasons, {**common, "context_overrides": _machine_facts(decision)}
        )
        return Outcome("review", case.tramite, case.id)
    overrides = {**_machine_facts(decision), "extemporaneo": "extemporaneo" in decision.flags}
    try:
        result = apply_event(
            session,
            app,
            case,
            "evaluar",
            reason=reasons,
            context_overrides=overrides,
            missing=missing_labels(app, decision.missing),
            **common,
        )
    except IllegalTransition as exc:
        _to_review(session, app, case, str(exc), common)
        return Outcome("review", case.tramite, case.id)
    return Outcome(RESULT_DISPOSITION.get(result.dest, "accept"), case.tramite, case.id)


def _machine_facts(decision: Decision) -> dict[str, Any]:
    """What the state machine's guards need from the decision (checks.signature_accepted)."""
    return {
        "requirements_complete": not decision.missing,
        "signature_status": decision.signature.status,
        "signature_accepted": decision.signature_accepted,
        "escrito_presented": decision.escrito,
    }


def _to_review(session: Session, app: App, case: Case, reason: str, common: dict[str, Any]) -> None:
    apply_event(session, app, case, "derivar_a_revision", reason=reason, **common)
