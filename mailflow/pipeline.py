"""Process one stored inbox message: triage, thread to its case or open one, apply events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session

from mailflow import answers, followup
from mailflow.audit import SYSTEM, record
from mailflow.authentication import (
    SenderAuthentication,
    authenticate,
    from_problem,
    header_sender,
)
from mailflow.automatic import detect_automatic
from mailflow.bounces import is_bounce, returned_delivery
from mailflow.bulkrows import SEES_PENDING, pending, updated_without_orm
from mailflow.case_reference import referenced_case_id
from mailflow.cases import apply_event, disposition_of, engine_event, missing_labels, open_case
from mailflow.deadlines import insert_held_timers, subsanacion_expired
from mailflow.decision import Decision, SignatureSummary
from mailflow.documents import ReceivedFile
from mailflow.effects import add_case_message, add_flags
from mailflow.errors import MailflowError
from mailflow.followup_policy import Merge, held_reason, merge_follow_up
from mailflow.identity import registry_lookup
from mailflow.issuance import case_overrides
from mailflow.machines import IllegalTransition
from mailflow.message import ParsedMessage
from mailflow.migraciones_inbound import from_migraciones, join_migraciones_reply
from mailflow.models import Case, CaseEvent, CaseMessage, InboxMessage
from mailflow.priority import remember_text
from mailflow.reading import DecideAs, Reading, decide_within, read_message, thread_keys

if TYPE_CHECKING:
    from mailflow.app import App


@dataclass(frozen=True)
class Outcome:
    """What happened to a message: the inbox row's disposition, procedure and case."""

    disposition: str
    tramite: str | None = None
    case_id: int | None = None


def read_inbox_message(
    app: App, row: InboxMessage, now: dt.datetime, session: Session | None = None
) -> Reading:
    """Parse `row` and make the intake decision it will need, within the per-message budget.

    Call it outside any write transaction: it only reads (which case the message answers,
    from its threading headers, in `session` or in a short read-only one of its own), then
    parses and decides in one child process. Returns the Reading that
    `process_inbox_message` consumes; a message over budget carries `exceeded`.
    """
    ids, subject = thread_keys(row.raw)
    if session is None:
        with app.database.session(readonly=True) as own:
            threaded = _threaded_case(own, ids, subject)
    else:
        threaded = _threaded_case(session, ids, subject)
    if threaded is None:
        return read_message(app, row.raw, DecideAs(received=row.arrived_at))
    tramite, state = threaded
    if state != "observado" or tramite not in app.catalogue.tramites:
        return read_message(app, row.raw)  # a follow-up outside an observation: no decision
    official = app.catalogue.get(tramite).subject
    return read_message(app, row.raw, DecideAs(subject=official, received=now))


def process_inbox_message(
    app: App,
    session: Session,
    row: InboxMessage,
    now: dt.datetime,
    reading: Reading | None = None,
) -> None:
    """Decide `row` and do everything that follows, in `session`'s transaction; idempotent.

    `reading` is the result of `read_inbox_message`, made before the transaction began so
    that the write transaction holds only the writes; without it the message is read here.
    """
    if row.status == "done":
        return
    if reading is None:
        reading = read_inbox_message(app, row, now, session)
    if reading.msg is not None:  # priority signals read it from here, not by parsing again
        remember_text(session, row.id, reading.msg.subject, reading.msg.text)
    _finish(session, row, _route(app, session, row, reading, now), now)


def read_as(app: App, row: InboxMessage, tramite: str) -> Reading:
    """Read `row` as if its subject were `tramite`'s official ASUNTO (outside transactions)."""
    subject = app.catalogue.get(tramite).subject
    return read_message(app, row.raw, DecideAs(subject=subject, received=row.arrived_at))


def classify_as(
    app: App,
    session: Session,
    row: InboxMessage,
    tramite: str,
    now: dt.datetime,
    reading: Reading | None = None,
) -> Outcome:
    """Staff decided the procedure: read the message as if its subject were the official ASUNTO,
    so fields, requirements and signature are assessed exactly as for a well-titled request.
    `reading` is `read_as(app, row, tramite)` made before the transaction, else made here."""
    official = app.catalogue.get(tramite).subject
    if reading is None or reading.decision_for(official) is None:
        reading = read_as(app, row, tramite)
    if reading.msg is None or reading.decision is None:
        raise MailflowError(reading.exceeded or "el mensaje no pudo leerse")
    decision = reading.decision
    if decision.tramite != tramite:
        raise MailflowError(f"el mensaje no pudo leerse como {app.catalogue.get(tramite).name}")
    outcome = _new_request(app, session, row, reading.msg, decision, now)
    _finish(session, row, outcome, now)
    return outcome


def link_to_case(
    app: App, session: Session, row: InboxMessage, case: Case, *, actor: str, now: dt.datetime
) -> Outcome:
    """Staff decided that a message naming `case` from another address (a lawyer, an NGO, a
    relative) belongs to it. It counts from its own receipt time (`row.arrived_at`), not from
    when staff linked it: an answer to an observation is in time if it arrived by the last
    day of the subsanación window. In `session`'s transaction; MailflowError if the message
    already belongs to a case."""
    if row.case_id is not None:
        raise MailflowError("el mensaje ya pertenece a un expediente")
    reading = read_as(app, row, case.tramite)
    msg = reading.msg
    if msg is None:
        raise MailflowError(reading.exceeded or "el mensaje no pudo leerse")
    _record_inbound(session, case, row, msg, now)
    received = app.calendario.legal_receipt_day(row.arrived_at)
    record(
        session,
        "personal",
        f"Mensaje de {msg.sender or 'remitente desconocido'} vinculado al expediente "
        f"{case.number} por el personal; cuenta desde su recepción el {received.isoformat()}.",
        at=now,
        actor=actor,
        case_id=case.id,
        inbox_message_id=row.id,
        data={"received_at": row.arrived_at.isoformat()},
    )
    if case.state == "observado":
        until = (case.sla or {}).get("subsanacion_deadline")
        late = until is not None and received > dt.date.fromisoformat(until)
        sender_auth = authenticate(msg, app.settings.security.authserv_id)
        outcome = _subsanar(app, session, row, reading, case, now, sender_auth, window_expired=late)
    else:
        add_flags(case, ["mensaje_nuevo"])
        outcome = Outcome("review", case.tramite, case.id)
    _finish(session, row, outcome, now)
    return outcome


def _finish(session: Session, row: InboxMessage, outcome: Outcome, now: dt.datetime) -> None:
    values = {
        "status": "done",
        "disposition": outcome.disposition,
        "tramite": outcome.tramite,
        "case_id": outcome.case_id,
        "processed_at": now,
    }
    if inspect(row).persistent:  # one UPDATE on the connection, not the unit of work's
        session.connection().execute(_FINISH, {"row_id": row.id, **values})
        updated_without_orm(session, row, values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    # the message's last writes (its case's transition, timers: apply_event(flush=False))
    # reach the database here, in one flush, as before the caller goes on
    insert_held_timers(session)
    session.flush()


def _route(
    app: App, session: Session, row: InboxMessage, reading: Reading, now: dt.datetime
) -> Outcome:
    msg = reading.msg
    if msg is None:
        _event(session, row, now, "exception", reading.exceeded or "", seconds=reading.seconds)
        return Outcome("review")
    seen = _duplicate(session, row, msg, now)
    if seen is not None:
        return seen
    intake = app.intake
    hits = detect_automatic(msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain)
    reasons = "; ".join(h.reason for h in hits)
    if hits and is_bounce(hits, msg):
        _event(session, row, now, "rule", reasons, rules=[h.rule for h in hits])
        returned = returned_delivery(session, app.settings, msg, reasons, now)
        if returned is None or returned.case_id is None:
            return Outcome("ignore")
        number = session.scalar(select(Case.number).where(Case.id == returned.case_id))
        reason = (
            f"Rebote: «{returned.subject}» no llegó a {returned.to_addr} (expediente {number}); "
            "no cuenta como notificación. Revise la dirección y vuelva a comunicarse."
        )
        _event(session, row, now, "exception", reason, outbox_id=returned.id)
        return Outcome("review")  # to the staff queue; never answered
    if from_migraciones(app.settings, msg):  # never acknowledged, whatever it looks like
        case_id = join_migraciones_reply(session, app, row, msg, now)
        return Outcome("review", None, case_id)
    if hits:
        _event(session, row, now, "rule", reasons, rules=[h.rule for h in hits])
        return Outcome("ignore")
    ambiguous = from_problem(msg)
    if ambiguous is not None:  # From: is the only identity: it must name exactly one mailbox
        _event(session, row, now, "exception", ambiguous, sender=msg.sender)
        return Outcome("review")
    case = _thread_case(session, msg)
    if case is not None:
        return _follow_up(app, session, row, reading, case, now)
    if reading.exceeded:
        _event(session, row, now, "exception", reading.exceeded, seconds=reading.seconds)
        return Outcome("review")
    decision = reading.decision_for(None)
    if decision is None:  # threading headers and the full parse disagreed: decide now
        reading = decide_within(app, reading, row.arrived_at)
        if reading.decision is None:
            _event(session, row, now, "exception", reading.exceeded or "", seconds=reading.seconds)
            return Outcome("review")
        decision = reading.decision
    joined = _on_file(app, session, row, reading, decision, now)
    if joined is not None:
        return joined
    return _new_request(app, session, row, msg, decision, now)


def _on_file(
    app: App,
    session: Session,
    row: InboxMessage,
    reading: Reading,
    decision: Decision,
    now: dt.datetime,
) -> Outcome | None:
    """A message without a case reference about the sender's open case: a resend of the same
    procedure joins it; a status question gets the state of the newest one."""
    msg = reading.msg
    assert msg is not None  # _route reads the message before deciding
    if decision.disposition == "ignore" or not msg.sender:
        return None
    if decision.tramite is not None and decision.disposition != "inform":
        same = followup.open_cases_of(session, msg.sender, decision.tramite)
        if same:
            case = same[0]
            if case.state == "observado":  # resent with the missing data: it is the subsanación
                return _follow_up(app, session, row, reading, case, now)
            _record_inbound(session, case, row, msg, now)
            followup.join_resend(app, session, case, row, msg, now)
            return Outcome("review", case.tramite, case.id)
    if decision.tramite is None and followup.is_status_question(msg):
        cases = followup.open_cases_of(session, msg.sender)
        if cases:
            _record_inbound(session, cases[0], row, msg, now)
            followup.answer_status(app, session, cases[0], row, now)
            return Outcome("review", cases[0].tramite, cases[0].id)
    return None


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


# statements built once (their SQL cache key is then computed once too); values bound per call
_INBOX = cast(Table, InboxMessage.__table__)
_FINISH = (
    update(_INBOX)
    .where(_INBOX.c.id == bindparam("row_id"))
    .values(
        {k: bindparam(k) for k in ("status", "disposition", "tramite", "case_id", "processed_at")}
    )
)
_EARLIER = (
    select(InboxMessage.id, InboxMessage.sha256, InboxMessage.tramite, InboxMessage.case_id)
    .where(
        InboxMessage.message_id.in_([bindparam("bare"), bindparam("angled")]),
        InboxMessage.status == "done",
        InboxMessage.id != bindparam("row"),
    )
    .limit(1)
)  # the columns only: the raw message is read when it is needed
_KNOWN_CASE = (
    select(CaseMessage.case_id)
    .where(CaseMessage.message_id == bindparam("message_id"), CaseMessage.direction == "in")
    .order_by(CaseMessage.id)
    .limit(1)
    .execution_options(**{SEES_PENDING: True})
)


def _duplicate(
    session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome | None:
    """The same message (by Message-ID) already processed from another inbox row.

    A Message-ID is chosen by the sender, so a stranger can reuse one: a message whose
    Message-ID is known but whose sender is not the original's (another From: than the earlier
    copy's, or than the applicant of the case that holds it) is never attached to that case;
    it goes to staff unattached.
    """
    if not msg.message_id:
        return None
    params = {"bare": msg.message_id, "angled": f"<{msg.message_id}>", "row": row.id}
    earlier = session.execute(_EARLIER, params).first()
    if earlier is None:
        known = _known_case_of(session, msg.message_id)
        if known is None:
            return None
        owner = session.scalar(select(Case.applicant_email).where(Case.id == known))
        if (owner or "").lower() != msg.sender.lower():
            return _foreign_duplicate(session, row, msg, now)
        reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya está en el expediente"
        _event(session, row, now, "duplicate", reason, case_id=known)
        return Outcome("ignore", None, known)
    if earlier.sha256 != row.sha256:
        raw = session.scalar(select(InboxMessage.raw).where(InboxMessage.id == earlier.id))
        if header_sender(raw or b"") != msg.sender.lower():
            return _foreign_duplicate(session, row, msg, now)
    reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya procesado (entrada {earlier.id})"
    _event(session, row, now, "duplicate", reason, case_id=earlier.case_id)
    return Outcome("ignore", earlier.tramite, earlier.case_id)


def _known_case_of(session: Session, message_id: str) -> int | None:
    """The case whose thread holds an inbound message with this Message-ID (the first
    recorded), looking at the entries still queued in this transaction too."""
    stored = session.scalar(_KNOWN_CASE, {"message_id": message_id})
    if stored is not None:
        return int(stored)
    queued = (
        r["case_id"]
        for r in pending(session, cast(Table, CaseMessage.__table__))
        if r["message_id"] == message_id and r["direction"] == "in"
    )
    return next(queued, None)


def _foreign_duplicate(
    session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome:
    reason = (
        f"Message-ID {msg.message_id} ya usado por otro remitente; este mensaje de "
        f"{msg.sender or 'un remitente desconocido'} no se agregó a ningún expediente"
    )
    _event(session, row, now, "exception", reason, sender=msg.sender)
    return Outcome("review")


def _threaded_case(session: Session, ids: tuple[str, ...], subject: str) -> tuple[str, str] | None:
    """(tramite, state) of the case these threading keys point to, read without locking."""
    case_id = _thread_case_id(session, ids, subject)
    if case_id is None:
        return None
    found = session.execute(select(Case.tramite, Case.state).where(Case.id == case_id)).first()
    return None if found is None else (str(found[0]), str(found[1]))


def _thread_case(session: Session, msg: ParsedMessage) -> Case | None:
    """The case this message answers, locked for update; None when it answers none."""
    case_id = _thread_case_id(session, (*msg.in_reply_to, *msg.references), msg.subject)
    if case_id is None:
        return None
    stmt = select(Case).where(Case.id == case_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _thread_case_id(session: Session, keys: tuple[str, ...], subject: str) -> int | None:
    """The case a message answers: by our Message-IDs, else by the number in the subject."""
    return referenced_case_id(session, keys, subject)


def _record_inbound(
    session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    message_id = msg.message_id or f"sin-id.{row.sha256[:24]}@mailflow.invalid"
    add_case_message(
        session, case_id=case.id, direction="in", inbox_message_id=row.id,
        message_id=message_id, at=now,
    )  # fmt: skip


def _received_files(msg: ParsedMessage) -> list[ReceivedFile]:
    return [ReceivedFile(a.filename or "adjunto", a.sha256, a.size) for a in msg.attachments]


def _follow_up(
    app: App,
    session: Session,
    row: InboxMessage,
    reading: Reading,
    case: Case,
    now: dt.datetime,
) -> Outcome:
    msg = reading.msg
    assert msg is not None  # _route answered a message that could not be read
    sender = msg.sender.lower()
    if not case.applicant_email or sender != case.applicant_email.lower():
        followup.third_party(app, session, case, row, msg, now)
        return Outcome("review", case.tramite)
    _record_inbound(session, case, row, msg, now)
    sender_auth = authenticate(msg, app.settings.security.authserv_id)
    if reading.exceeded:
        add_flags(case, ["mensaje_nuevo"])
        _event(session, row, now, "exception", reading.exceeded, case_id=case.id)
        return Outcome("review", case.tramite, case.id)
    if case.state == "observado":
        return _subsanar(app, session, row, reading, case, now, sender_auth)
    if followup.is_status_question(msg):
        followup.answer_status(app, session, case, row, now)
    else:
        followup.add_to_case(app, session, case, row, msg, now)
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
    reading: Reading,
    case: Case,
    now: dt.datetime,
    sender_auth: SenderAuthentication,
    window_expired: bool | None = None,
) -> Outcome:
    """Re-check the reply merged with what the case already has, with the same decision
    table as a new request (`Intake.recheck`).

    The reply's values are merged under `followup_policy` first: missing values are added,
    changes of existing values are held for staff unless the sender is authenticated
    (identity fields always are), and nothing is applied for an unauthenticated sender where
    sender authentication is configured. `window_expired` overrides the window check (a
    message that counts from its own receipt, linked by staff).
    """
    msg = reading.msg
    assert msg is not None
    if window_expired is None:
        window_expired = subsanacion_expired(session, case, now)
    tramite = app.catalogue.get(case.tramite)
    if reading.decision_for(tramite.subject) is None:  # the case was found only now
        reading = decide_within(app, reading, now, tramite.subject)
    first = reading.decision_for(tramite.subject)
    if first is None:
        _event(session, row, now, "exception", reading.exceeded or "", case_id=case.id)
        return Outcome("review", case.tramite, case.id)
    incoming = first.fields if first.tramite == tramite.id else {}
    merge = merge_follow_up(dict(case.fields or {}), incoming, sender_auth)
    if merge.blocked:
        return _hold(app, session, row, case, merge, sender_auth, now)
    probe = app.intake.recheck(
        msg,
        case.tramite,
        received=now,
        filed=case.received_at,
        prior_fields=merge.fields,
        prior_signature=_stored_signature(session, case),
        prior_flags=tuple(case.flags or ()),
        identity=registry_lookup(session),
    )
    fields = {**probe.fields, **merge.fields}  # held changes never reach the case
    case.fields = fields
    add_flags(case, probe.flags)
    missing = list(probe.missing)
    summary = {
        "fields": probe.fields,
        "missing": missing,
        "signature": probe.signature.as_json(),
        "checks": list(probe.checks),
        "sender": sender_auth.reason,
        **merge.audit(),
    }
    still = (
        f"falta {len(missing)} requisito"
        if len(missing) == 1
        else f"faltan {len(missing)} requisitos"
    )
    reason = "; ".join((*probe.reasons, f"Subsanación: {still}"))
    _event(session, row, now, "intake", reason, case_id=case.id, decision=summary)
    if (
        missing and not window_expired and followup.remaining_already_listed(session, case)
    ):  # the observation is made once (TUO Ley 27444 art. 136.1): no new list, no new window
        followup.add_to_case(app, session, case, row, msg, now)
        return Outcome("observe", case.tramite, case.id)
    overrides = {
        **_machine_facts(probe),
        "extemporaneo": "extemporaneo" in (case.flags or []),
        "subsanacion_expired": window_expired,
        **case_overrides(
            session,
            app,
            case,
            fields,
            sender=msg.sender,
            complete=not missing,
            signature_status=probe.signature.status,
            signer=probe.signature.signer,
            now=now,
        ),
    }
    if probe.disposition == "review" and not missing:
        overrides["signature_accepted"] = False  # staff must look: the machine's review branch
    try:
        apply_event(
            session,
            app,
            case,
            engine_event(app, case, "follow_up"),
            actor=SYSTEM,
            now=now,
            reason="Respuesta del solicitante a la observación",
            context_overrides=overrides,
            missing=missing_labels(app, missing),
            received_files=_received_files(msg),
            inbox_message_id=row.id,
            data={"sender_authenticated": sender_auth.authenticated},
            flush=False,  # the case's update reaches the database with the inbox row's
        )
    except IllegalTransition as exc:
        _event(session, row, now, "exception", str(exc), case_id=case.id)
        return Outcome("review", case.tramite, case.id)
    if merge.held:
        return _hold(app, session, row, case, merge, sender_auth, now)
    return Outcome(disposition_of(app, case), case.tramite, case.id)


def _hold(
    app: App,
    session: Session,
    row: InboxMessage,
    case: Case,
    merge: Merge,
    sender_auth: SenderAuthentication,
    now: dt.datetime,
) -> Outcome:
    """Changes that need staff: the reply goes to the staff queue (an inbox message without
    a case of its own; it stays in the case's thread) with the held values as the reason,
    recorded last so the queue shows it."""
    held = held_reason(case.number, merge, sender_auth, app.intake.vocabulary.label)
    _event(session, row, now, "exception", held, case_id=case.id, merge=merge.audit())
    add_flags(case, ["mensaje_nuevo"])
    return Outcome("review", case.tramite, None)


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
    if decision.tramite is None and decision.disposition == "inform":
        number = answers.inform_channel(
            session, app, msg, decision.topic, inbox_message_id=row.id,
            received=row.arrived_at, now=now,
        )  # fmt: skip
        _event(session, row, now, "inform", reasons, decision=decision.as_json(), registro=number)
        return Outcome("inform")
    if decision.tramite is None:
        number = answers.acknowledge(
            session, app, msg, inbox_message_id=row.id, received=row.arrived_at, now=now
        )
        _event(
            session, row, now, "exception", reasons, decision=decision.as_json(), registro=number
        )
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
    sender_auth = authenticate(msg, app.settings.security.authserv_id)
    common: dict[str, Any] = {
        "actor": SYSTEM,
        "now": now,
        "inbox_message_id": row.id,
        "received_files": _received_files(msg),
        "data": {"sender_authenticated": sender_auth.authenticated},  # its own reply cap
        "flush": False,  # the case's update reaches the database with the inbox row's
    }
    if decision.disposition == "inform":
        tramite = app.catalogue.get(case.tramite)
        event = engine_event(app, case, "inform")
        apply_event(session, app, case, event, reason=tramite.inform_reason, **common)
        return Outcome("inform", case.tramite, case.id)
    if decision.disposition == "review":
        _to_review(
            session, app, case, reasons, {**common, "context_overrides": _machine_facts(decision)}
        )
        return Outcome("review", case.tramite, case.id)
    tramite = app.catalogue.get(case.tramite)
    # the `identidad` check needs the registry, which the sandboxed reader has not got
    concerns = registry_lookup(session)(tramite, decision.fields, msg.sender)
    if tramite.identity_sensitive and sender_auth.configured and not sender_auth.authenticated:
        concerns.append(f"{tramite.name}: {sender_auth.reason}; confirme antes de aplicar")
    if concerns:
        _to_review(session, app, case, "; ".join(concerns), common)
        return Outcome("review", case.tramite, case.id)
    overrides = {
        **_machine_facts(decision),
        "extemporaneo": "extemporaneo" in decision.flags,
        **case_overrides(
            session,
            app,
            case,
            decision.fields,
            sender=msg.sender,
            complete=not decision.missing,
            signature_status=decision.signature.status,
            signer=decision.signature.signer,
            now=now,
        ),
    }
    try:
        apply_event(
            session,
            app,
            case,
            engine_event(app, case, "new_request"),
            reason=reasons,
            context_overrides=overrides,
            missing=missing_labels(app, decision.missing),
            **common,
        )
    except IllegalTransition as exc:
        _to_review(session, app, case, str(exc), common)
        return Outcome("review", case.tramite, case.id)
    return Outcome(disposition_of(app, case), case.tramite, case.id)


def _machine_facts(decision: Decision) -> dict[str, Any]:
    """What the state machine's guards need from the decision (checks.signature_accepted)."""
    return {
        "requirements_complete": not decision.missing,
        "signature_status": decision.signature.status,
        "signature_accepted": decision.signature_accepted,
        "escrito_presented": decision.escrito,
    }


def _to_review(session: Session, app: App, case: Case, reason: str, common: dict[str, Any]) -> None:
    apply_event(session, app, case, engine_event(app, case, "to_review"), reason=reason, **common)
