"""Messages about a case already on file: status questions, resends, messages added to the file,
messages that name a case from another address, and the one-time list of remaining items."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, select
from sqlalchemy.orm import Session

from mailflow.cases import answers
from mailflow.cases.effects import add_flags
from mailflow.clock import deadlines
from mailflow.intake.fields import strip_quoted
from mailflow.mail.message import ParsedMessage
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseEvent, InboxMessage
from mailflow.textnorm import fold

if TYPE_CHECKING:
    from mailflow.app import App

THIRD_PARTY = "mensaje_tercero"  # CaseEvent.event of a message naming a case from another address
STATUS_WINDOW = 600  # characters of subject + body read for a status question
# "¿Cómo va mi trámite?", "estado de mi expediente EXP-…" (accents and case folded).
_WHAT = r"(?:tramite|expediente|solicitud|caso|pedido|recurso|prorroga|carne|oficio)"
_STATUS = re.compile(
    r"\b(?:como va(?:n)? (?:mi|mis|el|la)\b|en que (?:estado|va|situacion) (?:esta|se encuentra|va)|"
    rf"(?:estado|situacion|seguimiento|avance) (?:de mi|del|de la|de su|a mi|actual de mi) {_WHAT}|"
    rf"(?:estado|seguimiento) (?:de|del) (?:expediente|exp) |alguna novedad|hay novedades|"
    rf"status of my|how is my (?:application|request|case)|any news on my|"
    rf"andamento d[oa] meu|situacao d[oa] meu)"
)


def is_status_question(msg: ParsedMessage) -> bool:
    """Whether a person asks how their case stands (in the subject or the first lines)."""
    text = fold(f"{msg.subject}\n{strip_quoted(msg.text[:4000])}"[:STATUS_WINDOW])
    return _STATUS.search(text) is not None


def open_cases_of(session: Session, address: str, tramite: str | None = None) -> list[Case]:
    """The sender's open cases (newest first), optionally of one procedure, locked for update."""
    if not address:
        return []
    if tramite is None:
        found = session.scalars(_OPEN_CASES, {"address": address.lower()})
    else:
        params = {"address": address.lower(), "tramite": tramite}
        found = session.scalars(_OPEN_CASES_OF, params)
    return list(found.all())


def _open_cases(*where: ColumnElement[bool]) -> Select[Case]:
    """The statement of `open_cases_of` (built once; values bound per call)."""
    return (
        select(Case)
        .where(Case.applicant_email == bindparam("address"), Case.closed_at.is_(None), *where)
        .order_by(Case.received_at.desc(), Case.id.desc())
        .with_for_update()
        .execution_options(populate_existing=True)
    )


_OPEN_CASES = _open_cases()
_OPEN_CASES_OF = _open_cases(Case.tramite == bindparam("tramite"))


def answer_status(
    app: App, session: Session, case: Case, row: InboxMessage, now: dt.datetime
) -> None:
    """Reply with the case's state, due date and last step, from the case record."""
    answers.answer_on_case(
        session, app, case, "estado_expediente", inbox_message_id=row.id, now=now
    )
    record(
        session,
        "message",
        f"Consulta de estado del expediente {case.number}: se respondió con su estado",
        at=now,
        case_id=case.id,
        inbox_message_id=row.id,
    )


def add_to_case(
    app: App, session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    """A message from the applicant on an open case: flag it for staff and confirm it was
    added to the file, saying what happens next. (Audit first, answer last: if the daily cap
    holds the answer back, that is the reason the staff queue shows.)"""
    reason = f"Nuevo mensaje del solicitante en el expediente {case.number} ({case.state})"
    _join(app, session, case, row, msg, now, reason, "mensaje_agregado")


def join_resend(
    app: App, session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    """The same person sent the same procedure again while its case is open: the message
    joins that case (the original filing date stays), no second case is opened, and the
    answer says where the case stands."""
    reason = (
        f"Reenvío de una solicitud ya registrada: se añadió al expediente {case.number}, "
        f"presentado el {case.legal_receipt_day.isoformat()} (no se abre otro expediente)"
    )
    _join(app, session, case, row, msg, now, reason, "reenvio_recibido")


def _join(
    app: App,
    session: Session,
    case: Case,
    row: InboxMessage,
    msg: ParsedMessage,
    now: dt.datetime,
    reason: str,
    template: str,
) -> None:
    """Flag the case for staff, audit `reason`, then answer with `template` (in that order)."""
    add_flags(case, ["mensaje_nuevo"])
    record(
        session,
        "message",
        reason,
        at=now,
        case_id=case.id,
        inbox_message_id=row.id,
        data={"subject": msg.subject[:200]},
    )
    answers.answer_on_case(
        session, app, case, template, inbox_message_id=row.id, now=now,
        authenticated=answers.is_authenticated(app, msg),
    )  # fmt: skip


def third_party(
    app: App, session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    """A message that names `case` but comes from another address (a lawyer, an NGO, a
    relative, or an impostor): acknowledged with no case data, sent to staff, and while it
    waits the case's subsanación window does not expire (see `holds_subsanacion`). If staff
    take it up, it counts from its own receipt time (`row.arrived_at`), never the case's."""
    sender = msg.sender.lower()
    number = answers.acknowledge(
        session, app, msg, inbox_message_id=row.id, received=row.arrived_at, now=now,
        names_case=True,
    )  # fmt: skip
    reason = (
        f"Mensaje que menciona el expediente {case.number} enviado desde "
        f"{sender or 'un remitente desconocido'}, que no es el correo del solicitante "
        "(abogado, organización, familiar o suplantación). No se agregó al expediente ni se "
        "dieron datos del caso; revise antes de actuar."
    )
    if case.state == "observado":
        reason += " El plazo de subsanación del expediente no vence mientras este mensaje espera."
    record(
        session,
        "exception",
        reason,
        at=now,
        case_id=case.id,
        inbox_message_id=row.id,
        event=THIRD_PARTY,
        data={"case_number": case.number, "sender": sender, "registro": number},
    )


def holds_subsanacion(session: Session, case: Case) -> bool:
    """Whether a message naming `case` from another address still waits in the staff queue
    (then the case's subsanación window must not expire)."""
    waiting = and_(
        CaseEvent.case_id == case.id,
        CaseEvent.event == THIRD_PARTY,
        CaseEvent.inbox_message_id == InboxMessage.id,
        InboxMessage.status == "done",
        InboxMessage.disposition == "review",
        InboxMessage.case_id.is_(None),
    )
    return bool(session.scalar(select(exists().where(waiting))))


def hold_subsanacion(app: App, session: Session, case: Case, now: dt.datetime, why: str) -> None:
    """Postpone the end of the subsanación window by one day (`why`: the reason, in Spanish);
    the next sweep looks again."""
    tomorrow = app.calendario.local(now).date() + dt.timedelta(days=1)
    deadlines.schedule(
        session, case, deadlines.SUBSANACION, deadlines.local_instant(app.calendario, tomorrow)
    )
    record(
        session,
        "sla",
        f"El plazo de subsanación no vence todavía: {why}.",
        at=now,
        case_id=case.id,
        event="vencer_subsanacion",
        data={"op": "hold", "until": tomorrow.isoformat()},
    )


def remaining_already_listed(session: Session, case: Case) -> bool:
    """Whether the remaining items of the current observation were already sent once (an
    incomplete answer to the observation fired observado → observado since it was made)."""
    observed = session.scalar(
        select(CaseEvent.id)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.kind == "transition",
            CaseEvent.to_state == "observado",
            CaseEvent.from_state != "observado",
        )
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    if observed is None:
        return False
    again = session.scalar(
        select(CaseEvent.id)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.kind == "transition",
            CaseEvent.from_state == "observado",
            CaseEvent.to_state == "observado",
            CaseEvent.id > observed,
        )
        .limit(1)
    )
    return again is not None
