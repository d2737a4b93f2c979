"""A case's deadline in the database: the SLA clock as JSON on the case, and its timers."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, make_transient

from mailflow.clock.dias_habiles import Calendario
from mailflow.clock.sla import Pausa, SlaClock
from mailflow.store.bulkrows import add_row, adopt, insert_now, within
from mailflow.store.models import Case, Timer
from mailflow.store.txcache import tx_info

SUBSANACION = "subsanacion_expiry"
REMINDER = "reminder"
ESCALATION = "escalation"
REMINDER_HOUR = dt.time(8, 0)
SNAPSHOT_MARGIN_DAYS = 45  # calendar days after the due date kept in a case's snapshot
_FRESH = "deadlines.fresh_case_timers"
_HELD = "deadlines.held_timers"
_INSERTED = "deadlines.inserted_timers"
_KNOWN = "deadlines.known_timers"
_TIMERS = cast(Table, Timer.__table__)
_TIMER_COLUMNS = ("case_id", "kind", "due_at", "fired_at", "fired_by", "cancelled_at")


def fresh_case_timers(session: Session, case_id: int) -> None:
    """Note that case `case_id` was created in `session`'s transaction: it has no timers but
    those `schedule` adds in this transaction, so its timers are looked up in memory instead
    of the database (per transaction: mailflow.store.txcache)."""
    tx_info(session).setdefault(_FRESH, {})[case_id] = []


def _fresh(session: Session, case: Case) -> list[Timer] | None:
    """All the timers of a case created in this transaction (those still in the session or
    waiting to be inserted), or None when the case may have timers in the database."""
    known: list[Timer] | None = tx_info(session).get(_FRESH, {}).get(case.id)
    if known is None:
        return None
    held = {id(t) for _, t in _held(session)}
    # a rolled back savepoint's timers are gone from both
    return [t for t in known if t in session or id(t) in held]


def load_timers(session: Session, case_ids: list[int], kind: str) -> None:
    """Load every timer of `kind` of the cases `case_ids` with one query and note, for this
    transaction (mailflow.store.txcache), that they are all there are: `cancel` and `schedule`
    of that kind for these cases then look in memory instead of asking the database each
    (a batch of observations accepted together). Timers of these cases and kind must then
    be added only through `schedule` in this transaction."""
    if not case_ids:
        return
    found = session.scalars(
        select(Timer).where(Timer.case_id.in_(case_ids), Timer.kind == kind).order_by(Timer.id)
    ).all()
    loaded: dict[tuple[int, str], list[Timer]] = {(case_id, kind): [] for case_id in case_ids}
    for timer in found:
        loaded[(timer.case_id, kind)].append(timer)
    tx_info(session).setdefault(_KNOWN, {}).update(loaded)


def _known(session: Session, case: Case, kinds: tuple[str, ...]) -> list[Timer] | None:
    """The case's timers of these kinds when `load_timers` loaded them in this transaction
    (with those `schedule` added since, less those a rolled back savepoint took), else None."""
    known: dict[tuple[int, str], list[Timer]] | None = tx_info(session).get(_KNOWN)
    if not known:
        return None
    timers: list[Timer] = []
    for kind in kinds:
        listed = known.get((case.id, kind))
        if listed is None:
            return None
        timers += [t for t in listed if t in session]
    return timers


def _held(session: Session) -> list[tuple[SessionTransaction | None, Timer]]:
    """The new timers of fresh cases not inserted yet, with the innermost transaction open
    when each was scheduled (in session.info, for this session's life)."""
    held: list[tuple[SessionTransaction | None, Timer]] | None = session.info.get(_HELD)
    if held is None:
        held = session.info[_HELD] = []
        event.listen(session, "do_orm_execute", _insert_held_on_statement)
        event.listen(session, "before_flush", _insert_held_on_flush)
        event.listen(session, "before_commit", _insert_held_on_commit)
        event.listen(session, "after_soft_rollback", _drop_held)
    return held


def insert_held_timers(session: Session) -> None:
    """Insert the new timers of fresh cases scheduled in this transaction and not inserted yet:
    one INSERT … RETURNING id each on the connection (no unit of work; the timers queued by
    `queue_held_timers` go in the first, mailflow.store.bulkrows.insert_now), then attached as
    persistent (mailflow.store.bulkrows.adopt), so later changes to them are ordinary updates. Runs
    before every statement and flush while timers are held, and before the commit (the
    pipeline queues a message's last ones instead: `queue_held_timers`). Returns nothing."""
    held = session.info.get(_HELD)
    if not held:
        return
    inserted = session.info.setdefault(_INSERTED, [])
    while held:
        tag, timer = held.pop(0)
        values = {key: getattr(timer, key) for key in _TIMER_COLUMNS}
        # with the timers still queued as rows (`queue_held_timers`), ahead of it: ids keep
        # the order in which timers were made
        timer.id = insert_now(session, _TIMERS, values)
        adopt(session, timer)
        inserted.append((tag, session.get_nested_transaction() or session.get_transaction(), timer))


def queue_held_timers(session: Session) -> None:
    """Hand the new timers of fresh cases scheduled in this transaction and not inserted yet
    to mailflow.store.bulkrows as rows (inserted with the transaction's other queued timers
    in one executemany: before the commit, or before a statement that reads or an ORM flush
    that inserts timers) instead of inserting each now; dropped if the (sub)transaction they
    were scheduled in rolls back. Their cases are no longer looked up in memory
    (`fresh_case_timers`): a later `schedule`, `cancel` or `subsanacion_expired` of such a
    case asks the database, which by then holds them. The Timer objects are let go (never
    given an id): call it when nothing will change them any more (the pipeline does, at the
    end of each message). Returns nothing."""
    held = session.info.get(_HELD)
    if not held:
        return
    fresh = tx_info(session).get(_FRESH, {})
    while held:
        tag, timer = held.pop(0)
        values = {key: getattr(timer, key) for key in _TIMER_COLUMNS}
        add_row(session, _TIMERS, values, tag=tag)
        fresh.pop(timer.case_id, None)


def _insert_held_on_statement(state: ORMExecuteState) -> None:
    if state.session.info.get(_HELD):  # as the ORM's autoflush would: queries see them
        insert_held_timers(state.session)


def _insert_held_on_flush(session: Session, _ctx: object, _instances: object) -> None:
    insert_held_timers(session)


def _insert_held_on_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:
        insert_held_timers(session)
        session.info[_INSERTED] = []


def _drop_held(session: Session, previous: SessionTransaction) -> None:
    """A rolled back (sub)transaction takes its scheduled timers with it; a timer of an outer
    transaction inserted inside it (the database undid the insert; adopt expunged it) waits
    to be inserted again."""
    held = session.info.get(_HELD, [])
    held[:] = [(tag, t) for tag, t in held if not within(tag, previous)]
    inserted = session.info.get(_INSERTED, [])
    again = [
        (tag, t) for tag, at, t in inserted if within(at, previous) and not within(tag, previous)
    ]
    inserted[:] = [(tag, at, t) for tag, at, t in inserted if not within(at, previous)]
    for _, timer in again:
        if timer in session:
            session.expunge(timer)
        make_transient(timer)
        del timer.id
    held[:0] = again


def clock_to_json(clock: SlaClock) -> dict[str, Any]:
    """The clock as JSON for Case.sla."""
    return {
        "term_days": clock.term_days,
        "started_on": clock.started_on.isoformat(),
        "due": clock.due.isoformat(),
        "paused_on": clock.paused_on.isoformat() if clock.paused_on else None,
        "remaining_when_paused": clock.remaining_when_paused,
        "pauses": [
            {
                "paused_on": p.paused_on.isoformat(),
                "resumed_on": p.resumed_on.isoformat(),
                "remaining": p.remaining,
            }
            for p in clock.pauses
        ],
    }


def clock_from_json(data: dict[str, Any]) -> SlaClock | None:
    """The clock stored on a case, or None when it was never started."""
    if not data or "due" not in data:
        return None
    paused = data.get("paused_on")
    return SlaClock(
        term_days=int(data["term_days"]),
        started_on=dt.date.fromisoformat(data["started_on"]),
        due=dt.date.fromisoformat(data["due"]),
        paused_on=dt.date.fromisoformat(paused) if paused else None,
        remaining_when_paused=data.get("remaining_when_paused"),
        pauses=tuple(
            Pausa(
                dt.date.fromisoformat(p["paused_on"]),
                dt.date.fromisoformat(p["resumed_on"]),
                int(p["remaining"]),
            )
            for p in data.get("pauses", [])
        ),
    )


def store_clock(case: Case, clock: SlaClock, *, stopped_on: dt.date | None = None) -> None:
    """Save the clock on the case (a new dict, so the JSON column is written)."""
    data = clock_to_json(clock)
    data["subsanacion_deadline"] = (case.sla or {}).get("subsanacion_deadline")
    if "calendario" in (case.sla or {}):
        data["calendario"] = case.sla["calendario"]
    if stopped_on is not None:
        data["stopped_on"] = stopped_on.isoformat()
    case.sla = data
    case.due_date = clock.due


def rule_key(cal: Calendario) -> str:
    """The receipt rule in force as a short key: "sin_corte" or "corte 17:00", plus the
    non-business-day filing setting."""
    cut = "sin_corte" if cal.cutoff is None else f"corte {cal.cutoff:%H:%M}"
    return f"{cut}; {cal.non_business_day_filing}"


def snapshot(cal: Calendario, first: dt.date, last: dt.date) -> dict[str, Any]:
    """The calendar as a case was computed with: rule key and each non-counted weekday (and
    its reason with source) from `first` to `last` + SNAPSHOT_MARGIN_DAYS."""
    days: dict[str, str] = {}
    day, end = first, last + dt.timedelta(days=SNAPSHOT_MARGIN_DAYS)
    while day <= end:
        if day.weekday() < 5:
            reason = cal.non_working_reason(day)
            if reason is not None:
                days[day.isoformat()] = reason
        day += dt.timedelta(days=1)
    return {"regla": rule_key(cal), "dias": days, "hasta": end.isoformat()}


def stamp(case: Case, cal: Calendario) -> None:
    """Record on `case.sla` the calendar its dates were computed with (call after storing the
    clock): the next `apply_calendar` names what changed since."""
    last = case.due_date or case.legal_receipt_day
    first = cal.local(case.received_at).date()
    case.sla = {**(case.sla or {}), "calendario": snapshot(cal, first, last)}


def local_instant(cal: Calendario, day: dt.date, at: dt.time = dt.time(0, 0)) -> dt.datetime:
    """`day` at `at` office time, as an aware UTC instant."""
    return dt.datetime.combine(day, at, tzinfo=cal.tz).astimezone(dt.UTC)


def _unflushed(session: Session, case: Case, kinds: tuple[str, ...]) -> list[Timer]:
    """The case's timers of these kinds added or changed in `session` but not yet flushed."""
    return [
        t
        for t in (*session.new, *session.dirty)
        if isinstance(t, Timer) and t.case_id == case.id and t.kind in kinds
    ]


def schedule(session: Session, case: Case, kind: str, due_at: dt.datetime) -> Timer:
    """Add a timer (or revive the same cancelled one: timers are unique per case/kind/due).

    Unflushed timers are looked at in the session rather than flushed for the query: a
    transition's effects then reach the database in one flush instead of one per timer.
    """
    fresh = _fresh(session, case)
    known = None if fresh is not None else _known(session, case, (kind,))
    if fresh is not None:
        existing = next((t for t in fresh if t.kind == kind and t.due_at == due_at), None)
    elif known is not None:
        existing = next((t for t in known if t.due_at == due_at), None)
    else:
        existing = next((t for t in _unflushed(session, case, (kind,)) if t.due_at == due_at), None)
    if existing is None and fresh is None and known is None:
        with session.no_autoflush:
            existing = session.scalar(
                select(Timer).where(
                    Timer.case_id == case.id, Timer.kind == kind, Timer.due_at == due_at
                )
            )
    if existing is not None:
        if existing.fired_at is None:
            existing.cancelled_at = None
        return existing
    if fresh is not None:  # inserted without the unit of work before the next flush
        timer = Timer(case_id=case.id, kind=kind, due_at=due_at)
        timer.fired_at = timer.fired_by = timer.cancelled_at = None
        _held(session).append(
            (session.get_nested_transaction() or session.get_transaction(), timer)
        )
        tx_info(session)[_FRESH][case.id] = [*fresh, timer]
        return timer
    timer = Timer(case_id=case.id, kind=kind, due_at=due_at)
    session.add(timer)
    if known is not None:
        tx_info(session)[_KNOWN][(case.id, kind)].append(timer)
    return timer


def cancel(session: Session, case: Case, kinds: tuple[str, ...], now: dt.datetime) -> int:
    """Cancel the case's pending timers of these kinds; returns how many."""
    fresh = _fresh(session, case)
    if fresh is not None:
        pending = [
            t for t in fresh if t.kind in kinds and t.fired_at is None and t.cancelled_at is None
        ]
        for timer in pending:
            timer.cancelled_at = now
        return len(pending)
    known = _known(session, case, kinds)
    if known is not None:
        pending = [t for t in known if t.fired_at is None and t.cancelled_at is None]
        for timer in pending:
            timer.cancelled_at = now
        return len(pending)
    with session.no_autoflush:
        stored = session.scalars(
            select(Timer).where(
                Timer.case_id == case.id,
                Timer.kind.in_(kinds),
                Timer.fired_at.is_(None),
                Timer.cancelled_at.is_(None),
            )
        ).all()
    candidates = dict.fromkeys((*stored, *_unflushed(session, case, kinds)))
    pending = [t for t in candidates if t.fired_at is None and t.cancelled_at is None]
    for timer in pending:
        timer.cancelled_at = now
    return len(pending)


def schedule_deadline_timers(
    session: Session, case: Case, cal: Calendario, due: dt.date, reminder_days_before: int
) -> None:
    """Reminder to staff `reminder_days_before` business days before `due`; escalation the
    day after it (the first moment the case is overdue)."""
    reminder_day = cal.add_business_days(due, -reminder_days_before)
    schedule(session, case, REMINDER, local_instant(cal, reminder_day, REMINDER_HOUR))
    schedule(session, case, ESCALATION, local_instant(cal, due + dt.timedelta(days=1)))


def subsanacion_expired(session: Session, case: Case, now: dt.datetime) -> bool:
    """Whether the case's open subsanación window has ended by `now`."""
    fresh = _fresh(session, case)
    if fresh is not None:
        dues = [t.due_at for t in fresh if t.kind == SUBSANACION and t.cancelled_at is None]
        return bool(dues) and max(dues) <= now
    due_at = session.scalar(
        select(Timer.due_at)
        .where(Timer.case_id == case.id, Timer.kind == SUBSANACION, Timer.cancelled_at.is_(None))
        .order_by(Timer.due_at.desc())
        .limit(1)
    )
    return due_at is not None and due_at <= now
