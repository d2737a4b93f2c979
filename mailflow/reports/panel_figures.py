"""The manager's period figures: one classification of each case, so every figure, the list it
links to and the CSV row count are the same set of cases by construction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases.machines import MachineDefinition
from mailflow.clock.dias_habiles import Calendario
from mailflow.store.models import Case, OutboxMessage

METRICS = {
    "recibidos": "Recibidos",
    "en_plazo": "Respondidos en plazo",
    "fuera_de_plazo": "Respondidos fuera de plazo",
    "pendientes": "Pendientes",
    "vencidos": "Vencidos",
}
GROUPS = {"tramite": "procedimiento", "oficina": "oficina", "responsable": "responsable"}
NOBODY = "sin"


@dataclass(frozen=True)
class Period:
    """Legal receipt days from `start` to `end`, both included (office local dates)."""

    start: dt.date
    end: dt.date

    @classmethod
    def parse(cls, desde: str | None, hasta: str | None, today: dt.date) -> Period:
        """From ISO dates (default: the first of today's month to today); swapped if reversed."""
        start = _date(desde) or today.replace(day=1)
        end = _date(hasta) or today
        return cls(min(start, end), max(start, end))


@dataclass(frozen=True)
class CaseFigure:
    """One case as the panel counts it."""

    case: Case
    office: str
    assignee: str  # username, or NOBODY
    delivered_on: dt.date | None  # office-local day the product reached the applicant
    resolved: bool
    overdue: bool

    def metrics(self) -> set[str]:
        """The figures this case counts in."""
        out = {"recibidos"}
        if self.delivered_on is not None:
            due = self.case.due_date
            out.add("en_plazo" if due is None or self.delivered_on <= due else "fuera_de_plazo")
        if not self.resolved:
            out.add("pendientes")
            if self.overdue:
                out.add("vencidos")
        return out

    def group(self, by: str) -> str:
        """The value of the grouping `by` (tramite | oficina | responsable)."""
        return {"tramite": self.case.tramite, "oficina": self.office, "responsable": self.assignee}[
            by
        ]


def delivered_on(case: Case, sent: Iterable[dt.datetime], cal: Calendario) -> dt.date | None:
    """The office-local day the product reached the applicant: that of the last reply sent to
    the applicant on or after the day the case was resolved (closed, or its clock stopped —
    the resolving reply carries the product); None while it has not been delivered.

    The one place that decides it (a later "product delivered at" field can replace it here).
    `sent`: `sent_at` of the case's outbox messages that were delivered.
    """
    stopped = (case.sla or {}).get("stopped_on")
    if case.closed_at is not None:
        resolved: dt.date | None = cal.local(case.closed_at).date()
    else:
        resolved = dt.date.fromisoformat(stopped) if isinstance(stopped, str) else None
    if resolved is None:
        return None
    days = [cal.local(at).date() for at in sent]
    after = [d for d in days if d >= resolved]
    return max(after) if after else None


def load(
    session: Session,
    cal: Calendario,
    machines: dict[str, MachineDefinition],
    period: Period,
    today: dt.date,
    usernames: dict[int, str],
    default_office: str,
) -> list[CaseFigure]:
    """Every case whose legal receipt day lies in the period, classified."""
    cases = list(
        session.scalars(
            select(Case)
            .where(Case.legal_receipt_day.between(period.start, period.end))
            .order_by(Case.legal_receipt_day, Case.number)
        )
    )
    sent: dict[int, list[dt.datetime]] = {}
    if cases:
        rows = session.execute(
            select(OutboxMessage.case_id, OutboxMessage.sent_at).where(
                OutboxMessage.case_id.in_([c.id for c in cases]),
                OutboxMessage.status == "sent",
                OutboxMessage.sent_at.is_not(None),
            )
        ).all()
        for case_id, at in rows:
            if case_id is not None and at is not None:
                sent.setdefault(case_id, []).append(at)
    final = {
        (m.id, s.name) for m in machines.values() for s in m.states if s.final or s.sla == "stopped"
    }
    paused = {(m.id, s.name) for m in machines.values() for s in m.states if s.sla == "paused"}
    out = []
    for c in cases:
        resolved = (
            c.closed_at is not None
            or (c.machine, c.state) in final
            or bool((c.sla or {}).get("stopped_on"))
        )
        delivered = delivered_on(c, sent.get(c.id, []), cal)
        running = not resolved and (c.machine, c.state) not in paused
        out.append(
            CaseFigure(
                case=c,
                office=c.office or default_office,
                assignee=usernames.get(c.assignee_id, NOBODY) if c.assignee_id else NOBODY,
                delivered_on=delivered,
                resolved=resolved,
                overdue=running and c.due_date is not None and c.due_date < today,
            )
        )
    return out


def select_figures(
    figures: Iterable[CaseFigure], metric: str, filters: dict[str, str]
) -> list[CaseFigure]:
    """The cases behind one figure: `metric` (a METRICS key) and group filters (GROUPS keys)."""
    return [
        f
        for f in figures
        if metric in f.metrics() and all(f.group(k) == v for k, v in filters.items() if v)
    ]


def totals(figures: Iterable[CaseFigure]) -> Counter[str]:
    """Metric → number of cases."""
    counter: Counter[str] = Counter()
    for f in figures:
        counter.update(f.metrics())
    return counter


def breakdown(figures: Iterable[CaseFigure], by: str) -> dict[str, Counter[str]]:
    """Group value → metric → count, groups sorted by name."""
    table: dict[str, Counter[str]] = {}
    for f in figures:
        table.setdefault(f.group(by), Counter()).update(f.metrics())
    return dict(sorted(table.items()))


def per_day(figures: Iterable[CaseFigure], period: Period) -> list[tuple[dt.date, int]]:
    """Received cases per legal receipt day of the period (sums to the "recibidos" figure)."""
    counts = Counter(f.case.legal_receipt_day for f in figures)
    days = (period.end - period.start).days + 1
    return [
        (period.start + dt.timedelta(d), counts[period.start + dt.timedelta(d)])
        for d in range(days)
    ]


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
