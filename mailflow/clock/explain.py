"""Explain a case's deadline in Spanish from its audit trail (receipt, term, pauses, due)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.clock.deadlines import clock_from_json
from mailflow.clock.dias_habiles import Calendario
from mailflow.store.models import Case, CaseEvent


def explain_deadline(session: Session, case: Case, cal: Calendario) -> list[str]:
    """One line per step: when it arrived, which receipt and counting rules applied and their
    legal sources (`Calendario.explain_due`, recomputed with `cal`, the case office's calendar),
    each suspension and each recomputation after a calendar change, the due date now. The steps
    after the receipt come from the case's `sla` audit events, in order."""
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == "sla")
        .order_by(CaseEvent.at, CaseEvent.id)
    ).all()
    clock = clock_from_json(case.sla or {})
    lines = [f"Expediente {case.number}."]
    started = False
    for event in events:
        op = (event.data or {}).get("op")
        if op == "start" and not started and clock is not None:
            started = True
            lines.extend(cal.explain_due(case.received_at, clock.term_days))
            continue
        lines.append(event.reason)
    if clock is None:
        lines.append("Este expediente no tiene plazo (trámite sin plazo de atención).")
        lines.append(f"Recepción: {cal.receipt_rule(case.received_at)}")
    elif (case.sla or {}).get("stopped_on"):
        lines.append(f"El plazo terminó el {case.sla['stopped_on']}.")
    elif clock.is_paused:
        lines.append(
            f"Plazo suspendido desde el {clock.paused_on}: le quedan "
            f"{_dias(clock.remaining_when_paused or 0)} cuando se reanude."
        )
    else:
        paused = clock.paused_business_days(cal)
        extra = f" (incluye {_dias(paused)} de suspensión)" if paused else ""
        lines.append(f"Fecha límite actual: {clock.due.isoformat()}{extra}.")
    return lines


def _dias(n: int) -> str:
    return "1 día hábil" if n == 1 else f"{n} días hábiles"
