"""Process one stored inbox message: triage, thread to its case or open one, apply events.

The route: `pipeline` sends a message to `replies` (a case already open) or `request` (a new
one); both write through `outcome`. Staff's decisions from the desk are in `staff`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Row, Table, bindparam, null, select, union_all
from sqlalchemy.orm import Session

from mailflow.cases import answers
from mailflow.cases.followup import third_party
from mailflow.cases.priority import remember_text
from mailflow.mail.authentication import from_problem, header_sender
from mailflow.mail.message import ParsedMessage
from mailflow.pipeline.followups import follow_up, on_file, unread_on_case
from mailflow.pipeline.new_request import new_request
from mailflow.pipeline.outcome import Outcome, finish, record_event, record_inbound
from mailflow.runners.reading import DecideAs, Reading, decide_within, read_message, thread_keys
from mailflow.store.bulkrows import SEES_PENDING, pending
from mailflow.store.models import Case, CaseMessage, InboxMessage
from mailflow.triage.automatic import RuleHit, detect_automatic
from mailflow.triage.bounces import is_bounce, returned_delivery
from mailflow.triage.case_reference import referenced_case_id
from mailflow.triage.migraciones_inbound import from_migraciones, join_migraciones_reply

if TYPE_CHECKING:
    from mailflow.app import App


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
    A row already "done" is left as it is (`reprocess` runs it again).
    """
    if row.status == "done":
        return
    reprocess(app, session, row, now, reading)


def reprocess(
    app: App,
    session: Session,
    row: InboxMessage,
    now: dt.datetime,
    reading: Reading | None = None,
) -> None:
    """Staff asked to run `row` through the pipeline again, whatever its status.

    In `session`'s transaction, as `process_inbox_message` (which calls it for a row not yet
    done): `reading` is `read_inbox_message`'s result made before the transaction, else the
    message is read here. The row ends "done" with its new outcome. Returns nothing.
    """
    if reading is None:
        reading = read_inbox_message(app, row, now, session)
    if reading.msg is not None:  # priority signals read it from here, not by parsing again
        scanned = reading.found.signals if reading.found is not None else None
        remember_text(session, row.id, reading.msg.subject, reading.msg.text, scanned)
    finish(session, row, _route(app, session, row, reading, now), now)


def _route(
    app: App, session: Session, row: InboxMessage, reading: Reading, now: dt.datetime
) -> Outcome:
    msg = reading.msg
    if msg is None:
        return _unread(app, session, row, reading, now)
    seen = _duplicate(session, row, msg, now)
    if seen is not None:
        return seen
    hits = _automatic(app, reading, msg)
    reasons = "; ".join(h.reason for h in hits)
    if hits and is_bounce(hits, msg):
        record_event(session, row, now, "rule", reasons, rules=[h.rule for h in hits])
        returned = returned_delivery(session, app.settings, msg, reasons, now)
        if returned is None or returned.case_id is None:
            return Outcome("ignore")
        number = session.scalar(select(Case.number).where(Case.id == returned.case_id))
        reason = (
            f"Rebote: «{returned.subject}» no llegó a {returned.to_addr} (expediente {number}); "
            "no cuenta como notificación. Revise la dirección y vuelva a comunicarse."
        )
        record_event(session, row, now, "exception", reason, outbox_id=returned.id)
        return Outcome("review")  # to the staff queue; never answered
    if from_migraciones(app.settings, msg):  # never acknowledged, whatever it looks like
        case_id = join_migraciones_reply(session, app, row, msg, now)
        return Outcome("review", None, case_id)
    if hits:
        record_event(session, row, now, "rule", reasons, rules=[h.rule for h in hits])
        return Outcome("ignore")
    ambiguous = reading.found.from_problem if reading.found is not None else from_problem(msg)
    if ambiguous is not None:  # From: is the only identity: it must name exactly one mailbox
        record_event(session, row, now, "exception", ambiguous, sender=msg.sender)
        return Outcome("review")
    case = _thread_case(session, msg)
    if case is not None:
        return follow_up(app, session, row, reading, case, now)
    if reading.exceeded:
        return _to_staff(app, session, row, reading, now, msg)
    decision = reading.decision_for(None)
    if decision is None:  # threading headers and the full parse disagreed: decide now
        reading = decide_within(app, reading, row.arrived_at)
        if reading.decision is None:
            return _to_staff(app, session, row, reading, now, msg)
        decision = reading.decision
    joined = on_file(app, session, row, reading, decision, now)
    if joined is not None:
        return joined
    return new_request(app, session, row, msg, decision, now)


def _unread(
    app: App, session: Session, row: InboxMessage, reading: Reading, now: dt.datetime
) -> Outcome:
    """A message that could not be read within its budget goes to staff with the reason. Its
    sender, read from the header block alone (`Reading.headers`), is told at once that staff
    will review it (acknowledgment with a registration number), unless those headers make it
    automatic mail (RFC 3834 …), its From: is not exactly one mailbox, it comes from
    Migraciones, or the same message (Message-ID and sender) was processed before; when its
    headers name a case that is not the sender's, it is answered as `followup.third_party`
    answers one read in full (no case data); when they name the sender's own case, it joins
    that case's thread (flag "mensaje_nuevo") and is acknowledged."""
    headers = reading.headers
    if headers is None or headers.automatic or headers.from_problem is not None:
        return _to_staff(app, session, row, reading, now, None)
    if from_migraciones(app.settings, headers.msg):
        return _to_staff(app, session, row, reading, now, None)
    seen = _duplicate(session, row, headers.msg, now)
    if seen is not None:
        return seen
    msg = headers.msg
    case = _thread_case(session, msg)
    if case is None:
        return _to_staff(app, session, row, reading, now, msg)
    if (case.applicant_email or "").lower() != msg.sender.lower():
        # it names a case that is not the sender's: answered as a message read in full
        # would be (no case data; the case's subsanación window held while it waits)
        third_party(app, session, case, row, msg, now)
        return _to_staff(app, session, row, reading, now, None)
    # the applicant's own case: it joins the case's thread, flagged for staff, as a message
    # read in full that runs out of its budget does (followups.follow_up)
    record_inbound(session, case, row, msg, now)
    return unread_on_case(app, session, case, row, msg, reading, now, with_seconds=True)


def _to_staff(
    app: App,
    session: Session,
    row: InboxMessage,
    reading: Reading,
    now: dt.datetime,
    answer: ParsedMessage | None,
) -> Outcome:
    """A message not read or not decided within its budget: record the exception (the
    reason, the CPU seconds it took) and, when `answer` (the message, or its header block) is
    given, acknowledge its sender at once (answers.acknowledge: a registration number and the
    day staff will have reviewed it). Returns Outcome("review")."""
    number = None
    if answer is not None:
        number = answers.acknowledge(
            session, app, answer, inbox_message_id=row.id, received=row.arrived_at, now=now
        )
    reason = reading.exceeded or ""
    record_event(session, row, now, "exception", reason, seconds=reading.seconds, registro=number)
    return Outcome("review")


def _automatic(app: App, reading: Reading, msg: ParsedMessage) -> list[RuleHit]:
    """The automatic-mail rules that hit `msg`: those found while reading it, else found now."""
    if reading.found is not None:
        return list(reading.found.automatic)
    intake = app.intake
    return detect_automatic(msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain)


# statements built once (their SQL cache key is then computed once too); values bound per call
_EARLIER = (
    select(InboxMessage.id, InboxMessage.sha256, InboxMessage.tramite, InboxMessage.case_id)
    .where(
        InboxMessage.message_id.in_([bindparam("bare"), bindparam("angled")]),
        InboxMessage.status == "done",
        InboxMessage.id != bindparam("row"),
    )
    .limit(1)
    .subquery()
)  # the columns only: the raw message is read when it is needed
_KNOWN_CASE = (
    select(CaseMessage.case_id, Case.applicant_email)
    .outerjoin(Case, Case.id == CaseMessage.case_id)
    .where(CaseMessage.message_id == bindparam("message_id"), CaseMessage.direction == "in")
    .order_by(CaseMessage.id)
    .limit(1)
    .subquery()
)
_SEEN = union_all(
    select(_EARLIER, null().label("owner")),
    select(null(), null(), null(), _KNOWN_CASE.c.case_id, _KNOWN_CASE.c.applicant_email),
).execution_options(**{SEES_PENDING: True})
"""Both questions of the duplicate check in one statement: the earlier copy processed from
another inbox row (a row with its `id`), and the first case whose thread holds an inbound
message with this Message-ID, with that case's applicant (a row whose `id` is NULL). The
thread's entries still queued in this transaction are looked at by the caller."""


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
    params = {
        "bare": msg.message_id,
        "angled": f"<{msg.message_id}>",
        "row": row.id,
        "message_id": msg.message_id,
    }
    seen = session.execute(_SEEN, params).all()
    earlier = next((r for r in seen if r.id is not None), None)
    if earlier is None:
        known = _known_case_of(session, msg.message_id, seen)
        if known is None:
            return None
        case_id, owner = known
        if (owner or "").lower() != msg.sender.lower():
            return _foreign_duplicate(session, row, msg, now)
        reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya está en el expediente"
        record_event(session, row, now, "duplicate", reason, case_id=case_id)
        return Outcome("ignore", None, case_id)
    if earlier.sha256 != row.sha256:
        raw = session.scalar(select(InboxMessage.raw).where(InboxMessage.id == earlier.id))
        if header_sender(raw or b"") != msg.sender.lower():
            return _foreign_duplicate(session, row, msg, now)
    reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya procesado (entrada {earlier.id})"
    record_event(session, row, now, "duplicate", reason, case_id=earlier.case_id)
    return Outcome("ignore", earlier.tramite, earlier.case_id)


def _known_case_of(
    session: Session, message_id: str, seen: Sequence[Row[Any]]
) -> tuple[int, str | None] | None:
    """The case whose thread holds an inbound message with this Message-ID (the first
    recorded) and its applicant's address: from `seen` (`_SEEN`'s rows), else from the
    entries still queued in this transaction; None when no thread holds it."""
    stored = next((r for r in seen if r.id is None and r.case_id is not None), None)
    if stored is not None:
        return int(stored.case_id), stored.owner
    queued = (
        r["case_id"]
        for r in pending(session, cast(Table, CaseMessage.__table__))
        if r["message_id"] == message_id and r["direction"] == "in"
    )
    case_id = next(queued, None)
    if case_id is None:
        return None
    return case_id, session.scalar(select(Case.applicant_email).where(Case.id == case_id))


def _foreign_duplicate(
    session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome:
    reason = (
        f"Message-ID {msg.message_id} ya usado por otro remitente; este mensaje de "
        f"{msg.sender or 'un remitente desconocido'} no se agregó a ningún expediente"
    )
    record_event(session, row, now, "exception", reason, sender=msg.sender)
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
