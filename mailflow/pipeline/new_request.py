"""A message that opens a new request: ignore it, answer it, or open its case and apply the
first event (sender authentication, the registry's identity check, issuance overrides)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.cases import answers
from mailflow.cases.core import apply_event, disposition_of, engine_event, missing_labels, open_case
from mailflow.cases.machines import IllegalTransition
from mailflow.documents.issuance import case_overrides
from mailflow.intake.decision import Decision
from mailflow.mail.authentication import authenticate
from mailflow.mail.message import ParsedMessage
from mailflow.pipeline.outcome import (
    Outcome,
    machine_facts,
    received_files,
    record_event,
    record_inbound,
)
from mailflow.registry.identity import registry_lookup
from mailflow.store.audit import SYSTEM
from mailflow.store.models import Case, InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App


def new_request(
    app: App,
    session: Session,
    row: InboxMessage,
    msg: ParsedMessage,
    decision: Decision,
    now: dt.datetime,
) -> Outcome:
    """Act on `decision` for `msg` (inbox row `row`) as a new request, in `session`'s
    transaction: ignore it, answer an information request or an unknown procedure, or open
    its case and apply its first event (to staff review when the registry, the sender's
    authentication or the machine says so). Returns the Outcome for `row`; the caller
    finishes the row."""
    reasons = "; ".join(decision.reasons)
    if decision.disposition == "ignore":
        record_event(session, row, now, "rule", reasons, rules=list(decision.rule_hits))
        return Outcome("ignore")
    if decision.tramite is None and decision.disposition == "inform":
        number = answers.inform_channel(
            session, app, msg, decision.topic, inbox_message_id=row.id,
            received=row.arrived_at, now=now,
        )  # fmt: skip
        record_event(
            session, row, now, "inform", reasons, decision=decision.as_json(), registro=number
        )
        return Outcome("inform")
    if decision.tramite is None:
        number = answers.acknowledge(
            session, app, msg, inbox_message_id=row.id, received=row.arrived_at, now=now
        )
        record_event(
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
    record_inbound(session, case, row, msg, now)
    sender_auth = authenticate(msg, app.settings.security.authserv_id)
    common: dict[str, Any] = {
        "actor": SYSTEM,
        "now": now,
        "inbox_message_id": row.id,
        "received_files": received_files(msg),
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
            session, app, case, reasons, {**common, "context_overrides": machine_facts(decision)}
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
        **machine_facts(decision),
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


def _to_review(session: Session, app: App, case: Case, reason: str, common: dict[str, Any]) -> None:
    apply_event(session, app, case, engine_event(app, case, "to_review"), reason=reason, **common)
