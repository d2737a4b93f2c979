"""Managers' metrics: SLA compliance, backlog, due-soon/overdue, volume and resolution times."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailflow.clock.dias_habiles import Calendario
from mailflow.store.models import Case

AGE_BUCKETS = ("0–5", "6–10", "11–15", ">15")
PAUSED_STATES = frozenset({"observado"})
VOLUME_DAYS = 30
DEFAULT_MONTHS = 6


@dataclass(frozen=True)
class CaseRow:
    """The few facts of one case the metrics need (dates already in office local time)."""

    case_id: int
    number: str
    tramite: str
    state: str
    applicant: str
    received_on: dt.date
    receipt_day: dt.date
    due_date: dt.date | None
    closed_on: dt.date | None
    paused: bool

    @property
    def open(self) -> bool:
        """True while the case has no closing date."""
        return self.closed_on is None


@dataclass(frozen=True)
class Compliance:
    """Cases of one procedure received in one month: answered within term vs late."""

    tramite: str
    month: str  # YYYY-MM of the legal receipt day
    on_time: int
    late: int

    @property
    def total(self) -> int:
        """Cases decided in the month: on time plus late."""
        return self.on_time + self.late

    @property
    def rate(self) -> float | None:
        """Percentage within term (one decimal), None when nothing is decided yet."""
        return round(100 * self.on_time / self.total, 1) if self.total else None


@dataclass(frozen=True)
class Pending:
    """An open case on the due-soon or overdue list; `days` left (or past, when overdue)."""

    case_id: int
    number: str
    tramite: str
    state: str
    applicant: str
    due_date: dt.date
    days: int


@dataclass(frozen=True)
class Summary:
    """Everything the dashboard and the reports show, for the period [since, today]."""

    today: dt.date
    since: dt.date
    compliance: list[Compliance]
    backlog: dict[str, list[int]]  # state → counts per AGE_BUCKETS
    due_soon: list[Pending]
    overdue: list[Pending]
    volume: list[tuple[dt.date, int]]
    median_days: dict[str, float]
    totals: dict[str, int] = field(default_factory=dict)

    def compliance_by_month(self) -> list[Compliance]:
        """All procedures together, one entry per month of the period (oldest first)."""
        sums = dict(_sum_by(self.compliance, "month"))
        return [Compliance("*", m, *sums.get(m, (0, 0))) for m in self.months()]

    def months(self) -> list[str]:
        """Every month of the period, 'YYYY-MM', oldest first."""
        first = self.since.year * 12 + self.since.month - 1
        last = self.today.year * 12 + self.today.month - 1
        return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(first, last + 1)]

    def compliance_by_tramite(self) -> list[Compliance]:
        """All months of the period together, one entry per procedure."""
        return [Compliance(k, "*", a, b) for k, (a, b) in _sum_by(self.compliance, "tramite")]

    def overall_rate(self) -> float | None:
        """Percentage of cases decided within term over every procedure and month (one decimal),
        None when nothing is decided yet.
        """
        on_time = sum(c.on_time for c in self.compliance)
        return Compliance("*", "*", on_time, sum(c.late for c in self.compliance)).rate


def compute(
    session: Session,
    cal: Calendario,
    today: dt.date,
    due_soon_days: int,
    since: dt.date | None = None,
) -> Summary:
    """Load the cases and summarise the period [since, today] (default: the last 6 months)."""
    since = since or period_start(today)
    return summarise(load_rows(session, cal, today, since), cal, today, due_soon_days, since)


def load_rows(session: Session, cal: Calendario, today: dt.date, since: dt.date) -> list[CaseRow]:
    """Cases still open, or received or closed on/after `since` or within the volume window."""
    start = min(since, today - dt.timedelta(days=VOLUME_DAYS))
    cutoff = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=1)
    stmt = select(Case).where(
        or_(Case.closed_at.is_(None), Case.legal_receipt_day >= start, Case.closed_at >= cutoff)
    )
    return [to_row(c, cal) for c in session.scalars(stmt)]


def to_row(case: Case, cal: Calendario) -> CaseRow:
    """The metrics' view of one case."""
    paused = case.state in PAUSED_STATES or bool((case.sla or {}).get("paused_on"))
    return CaseRow(
        case_id=case.id,
        number=case.number,
        tramite=case.tramite,
        state=case.state,
        applicant=case.applicant_name or case.applicant_email or "",
        received_on=cal.local(case.received_at).date(),
        receipt_day=case.legal_receipt_day,
        due_date=case.due_date,
        closed_on=_resolved_on(case, cal),
        paused=paused,
    )


def _resolved_on(case: Case, cal: Calendario) -> dt.date | None:
    """Closing day, or the day its clock stopped (a resolved case is never pending)."""
    if case.closed_at is not None:
        return cal.local(case.closed_at).date()
    stopped = (case.sla or {}).get("stopped_on")
    return dt.date.fromisoformat(stopped) if isinstance(stopped, str) else None


def summarise(
    rows: Sequence[CaseRow], cal: Calendario, today: dt.date, due_soon_days: int, since: dt.date
) -> Summary:
    """Compute every metric of the period [since, today] from `rows`."""
    in_period = [r for r in rows if since <= r.receipt_day <= today]
    closed = [r for r in rows if r.closed_on is not None and since <= r.closed_on <= today]
    return Summary(
        today=today,
        since=since,
        compliance=compliance(in_period, today),
        backlog=backlog(rows, cal, today),
        due_soon=due_soon(rows, cal, today, due_soon_days),
        overdue=overdue(rows, cal, today),
        volume=volume(rows, today),
        median_days=median_resolution(closed, cal),
        totals={
            "recibidos": len(in_period),
            "cerrados": len(closed),
            "abiertos": sum(1 for r in rows if r.open),
        },
    )


def period_start(today: dt.date, months: int = DEFAULT_MONTHS) -> dt.date:
    """First day of the month `months - 1` months before today's month."""
    index = today.year * 12 + today.month - 1 - (months - 1)
    return dt.date(index // 12, index % 12 + 1, 1)


def compliance(rows: Iterable[CaseRow], today: dt.date) -> list[Compliance]:
    """Per procedure and receipt month: closed on or before the due date vs late.

    An open case past its due date (and not paused) counts as late; other open cases and
    cases without a term (informative replies) are not counted.
    """
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.due_date is None:
            continue
        key = (r.tramite, r.receipt_day.strftime("%Y-%m"))
        if r.closed_on is not None:
            counts[key][0 if r.closed_on <= r.due_date else 1] += 1
        elif not r.paused and today > r.due_date:
            counts[key][1] += 1
    return [Compliance(t, m, c[0], c[1]) for (t, m), c in sorted(counts.items())]


def age_bucket(age: int) -> int:
    """Index into AGE_BUCKETS for an age in días hábiles."""
    return 0 if age <= 5 else 1 if age <= 10 else 2 if age <= 15 else 3


def backlog(rows: Iterable[CaseRow], cal: Calendario, today: dt.date) -> dict[str, list[int]]:
    """Open cases by state and by age in días hábiles since their legal receipt day."""
    table: dict[str, list[int]] = {}
    for r in rows:
        if r.open:
            age = max(0, cal.business_days_between(r.receipt_day, today))
            table.setdefault(r.state, [0] * len(AGE_BUCKETS))[age_bucket(age)] += 1
    return dict(sorted(table.items(), key=lambda kv: (-sum(kv[1]), kv[0])))


def due_soon(rows: Iterable[CaseRow], cal: Calendario, today: dt.date, days: int) -> list[Pending]:
    """Open, running cases due today or within `days` business days (soonest first)."""
    out = [
        _pending(r, cal.business_days_between(today, r.due_date))
        for r in rows
        if r.open and not r.paused and r.due_date is not None and r.due_date >= today
    ]
    return sorted((p for p in out if p.days <= days), key=lambda p: (p.due_date, p.number))


def overdue(rows: Iterable[CaseRow], cal: Calendario, today: dt.date) -> list[Pending]:
    """Open, running cases past their due date; `days` = business days late (worst first)."""
    out = [
        _pending(r, cal.business_days_between(r.due_date, today))
        for r in rows
        if r.open and not r.paused and r.due_date is not None and today > r.due_date
    ]
    return sorted(out, key=lambda p: (p.due_date, p.number))


def volume(
    rows: Iterable[CaseRow], today: dt.date, days: int = VOLUME_DAYS
) -> list[tuple[dt.date, int]]:
    """Requests per legal receipt day (a Sunday's mail counts on Monday, as the "recibidos"
    figure does), the last `days` days up to today."""
    first = today - dt.timedelta(days=days - 1)
    counts = Counter(r.receipt_day for r in rows if first <= r.receipt_day <= today)
    return [
        (first + dt.timedelta(days=i), counts[first + dt.timedelta(days=i)]) for i in range(days)
    ]


def median_resolution(rows: Iterable[CaseRow], cal: Calendario) -> dict[str, float]:
    """Median días hábiles from legal receipt to closure, per procedure of closed cases."""
    spans: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r.closed_on is not None:
            spans[r.tramite].append(max(0, cal.business_days_between(r.receipt_day, r.closed_on)))
    return {t: float(statistics.median(v)) for t, v in sorted(spans.items())}


def _pending(r: CaseRow, days: int) -> Pending:
    assert r.due_date is not None
    return Pending(r.case_id, r.number, r.tramite, r.state, r.applicant, r.due_date, days)


def _sum_by(items: Iterable[Compliance], attr: str) -> list[tuple[str, tuple[int, int]]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in items:
        sums[getattr(c, attr)][0] += c.on_time
        sums[getattr(c, attr)][1] += c.late
    return [(k, (v[0], v[1])) for k, v in sorted(sums.items())]
