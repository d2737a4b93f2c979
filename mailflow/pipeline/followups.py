"""A message about a case already open: a resend or a status question about the sender's
case, a reply in its thread, and the subsanación of an observation (merged, re-checked,
held for staff when it changes what the case has)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases import answers, followup
from mailflow.cases.core import apply_event, disposition_of, engine_event, missing_labels
from mailflow.cases.effects import add_flags
from mailflow.cases.followup_policy import Merge, held_reason, merge_follow_up
from mailflow.cases.machines import IllegalTransition
from mailflow.clock.deadlines import subsanacion_expired
from mailflow.documents.issuance import case_overrides
from mailflow.intake.decision import Decision, SignatureSummary
from mailflow.mail.authentication import SenderAuthentication, authenticate
from mailflow.mail.message import ParsedMessage
from mailflow.pipeline.outcome import (
    Outcome,
    machine_facts,
    received_files,
    record_event,
    record_inbound,
)
from mailflow.registry.identity import registry_lookup
from mailflow.runners.reading import Reading, decide_within
from mailflow.store.audit import SYSTEM
from mailflow.store.models import Case, CaseEvent, InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App


def on_file(
    app: App,
    session: Session,
    row: InboxMessage,
    reading: Reading,
    decision: Decision,
    now: dt.datetime,
) -> Outcome | None:
    """A message without a case reference about the sender's open case: a resend of the same
    procedure joins it; a status question gets the state of the newest one. Returns the
    Outcome for `row`, or None when the message is about no open case (a new request)."""
    msg = reading.msg
    assert msg is not None  # _route reads the message before deciding
    if decision.disposition == "ignore" or not msg.sender:
        return None
    if decision.tramite is not None and decision.disposition != "inform":
        same = followup.open_cases_of(session, msg.sender, decision.tramite)
        if same:
            case = same[0]
            if case.state == "observado":  # resent with the missing data: it is the subsanación
                return follow_up(app, session, row, reading, case, now)
            record_inbound(session, case, row, msg, now)
            followup.join_resend(app, session, case, row, msg, now)
            return Outcome("review", case.tramite, case.id)
    if decision.tramite is None and followup.is_status_question(msg):
        cases = followup.open_cases_of(session, msg.sender)
        if cases:
            record_inbound(session, cases[0], row, msg, now)
            followup.answer_status(app, session, cases[0], row, now)
            return Outcome("review", cases[0].tramite, cases[0].id)
    return None


def follow_up(
    app: App,
    session: Session,
    row: InboxMessage,
    reading: Reading,
    case: Case,
    now: dt.datetime,
) -> Outcome:
    """`row` answers `case` (found by its threading headers, locked): from someone else it
    goes to staff; from the applicant it joins the thread and is the subsanación, a status
    question or a new message for staff. Returns the Outcome for `row`."""
    msg = reading.msg
    assert msg is not None  # _route answered a message that could not be read
    sender = msg.sender.lower()
    if not case.applicant_email or sender != case.applicant_email.lower():
        followup.third_party(app, session, case, row, msg, now)
        return Outcome("review", case.tramite)
    record_inbound(session, case, row, msg, now)
    sender_auth = authenticate(msg, app.settings.security.authserv_id)
    if reading.exceeded:
        return unread_on_case(app, session, case, row, msg, reading, now)
    if case.state == "observado":
        return subsanar(app, session, row, reading, case, now, sender_auth)
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


def subsanar(
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
    message that counts from its own receipt, linked by staff). Returns the Outcome for
    `row`; the caller finishes the row.
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
        return unread_on_case(app, session, case, row, msg, reading, now)
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
    record_event(session, row, now, "intake", reason, case_id=case.id, decision=summary)
    if (
        missing and not window_expired and followup.remaining_already_listed(session, case)
    ):  # the observation is made once (TUO Ley 27444 art. 136.1): no new list, no new window
        followup.add_to_case(app, session, case, row, msg, now)
        return Outcome("observe", case.tramite, case.id)
    overrides = {
        **machine_facts(probe),
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
            received_files=received_files(msg),
            inbox_message_id=row.id,
            data={"sender_authenticated": sender_auth.authenticated},
            flush=False,  # the case's update reaches the database with the inbox row's
        )
    except IllegalTransition as exc:
        record_event(session, row, now, "exception", str(exc), case_id=case.id)
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
    record_event(session, row, now, "exception", held, case_id=case.id, merge=merge.audit())
    add_flags(case, ["mensaje_nuevo"])
    return Outcome("review", case.tramite, None)


def unread_on_case(
    app: App,
    session: Session,
    case: Case,
    row: InboxMessage,
    msg: ParsedMessage,
    reading: Reading,
    now: dt.datetime,
    *,
    with_seconds: bool = False,
) -> Outcome:
    """The applicant's message on their own case (already in its thread) that could not be
    read or decided within its budget: the case flagged "mensaje_nuevo" for staff, the
    exception recorded with the reason (and the CPU seconds the reading took, `with_seconds`:
    when it was the reading itself that ran out), and the applicant told at once that staff will
    review it (answers.acknowledge: a registration number and the day). Returns the
    Outcome("review") of `row` on `case`."""
    add_flags(case, ["mensaje_nuevo"])
    number = answers.acknowledge(
        session, app, msg, inbox_message_id=row.id, received=row.arrived_at, now=now
    )
    measured = {"seconds": reading.seconds} if with_seconds else {}
    reason = reading.exceeded or ""
    record_event(
        session, row, now, "exception", reason, case_id=case.id, registro=number, **measured
    )
    return Outcome("review", case.tramite, case.id)
