"""Timer sweep: subsanación expiry, reminders, escalation; each timer fires exactly once."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.cases.delivery_events import on_accepted
from mailflow.clock.deadlines import ESCALATION, REMINDER, SUBSANACION
from mailflow.config import load_settings
from mailflow.pipeline.route import process_inbox_message
from mailflow.runners.sweep import (
    Leadership,
    build_scheduler,
    run_sweep,
    sweep_job,
    weekly_report_job,
)
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, OutboxMessage, Timer
from tests.support.cases_support import (
    DATOS,
    MONDAY,
    ROOT,
    mail,
    make_app,
    outbox,
    parse_out,
    store,
)

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
THURSDAY = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)  # 01:00 in Lima, window ended
CASES = 100


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _observed_case(app: App, *, delivered: bool = True) -> Case:
    """An observed case whose observation the SMTP server accepted at once (or not yet)."""
    with app.database.session() as s:
        row = store(s, mail("Actualización de datos", SIN_TELEFONO))
        process_inbox_message(app, s, row, MONDAY)
        case = s.get(Case, row.case_id)
        assert case is not None and case.state == "observado"
    if delivered:
        with app.database.session() as s:
            [observation] = outbox(s)
            observation.status = "sent"
            on_accepted(s, app.settings, observation, MONDAY)
    return case


def test_subsanacion_window_expiring_closes_case_as_no_presentado(app: App) -> None:
    case = _observed_case(app)
    assert run_sweep(app, MONDAY + dt.timedelta(days=1), "w1") == 0  # not due yet
    assert run_sweep(app, THURSDAY, "w1") == 1
    assert run_sweep(app, THURSDAY, "w2") == 0  # a second sweep fires nothing again
    with app.database.session(readonly=True) as s:
        stored = s.get(Case, case.id)
        outs = outbox(s)
        [timer] = s.scalars(
            select(Timer).where(Timer.kind == SUBSANACION, Timer.cancelled_at.is_(None))
        ).all()
        kinds = list(s.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)))
    assert stored is not None and stored.state == "no_presentado"
    assert stored.closed_at == THURSDAY
    assert (timer.fired_at, timer.fired_by) == (THURSDAY, "w1")
    assert [o.kind for o in outs] == ["observacion", "no_presentado"]
    assert "no presentada" in parse_out(outs[1]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert kinds.count("timer") == 1 and "transition" in kinds


def test_reminder_and_escalation_notify_staff_and_managers(app: App) -> None:
    with app.database.session() as s:
        row = store(s, mail("Actualización de datos", DATOS))
        process_inbox_message(app, s, row, MONDAY)
    case_id = row.case_id
    after_due = dt.datetime(2026, 12, 17, 12, 0, tzinfo=dt.UTC)  # due 2026-12-16
    assert run_sweep(app, after_due, "w1") == 2
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        notes = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "notify")
        ).all()
        timers = {t.kind: t for t in s.scalars(select(Timer)).all()}
    assert case is not None and "vencido" in case.flags
    assert sorted(n.data["role"] for n in notes) == ["manager", "staff"]
    assert timers[REMINDER].due_at == dt.datetime(2026, 12, 14, 13, 0, tzinfo=dt.UTC)
    assert timers[ESCALATION].due_at == dt.datetime(2026, 12, 17, 5, 0, tzinfo=dt.UTC)


def test_answered_observation_cancels_the_expiry(app: App) -> None:
    case = _observed_case(app)
    with app.database.session(readonly=True) as s:
        our = outbox(s)[0].message_id
    with app.database.session() as s:
        reply = store(s, mail("RE: obs", "Teléfono: 987654321", in_reply_to=f"<{our}>"))
        process_inbox_message(app, s, reply, MONDAY + dt.timedelta(days=1))
    assert run_sweep(app, THURSDAY, "w1") == 0
    with app.database.session(readonly=True) as s:
        stored = s.get(Case, case.id)
    assert stored is not None and stored.state == "en_tramite"


def test_scheduler_runs_the_sweep_job(app: App) -> None:
    scheduler = build_scheduler(app, "w-test")
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"mailflow.sweep", "mailflow.weekly_report"}
    job = jobs["mailflow.sweep"]
    assert job.func is sweep_job
    assert job.trigger.interval == dt.timedelta(seconds=app.settings.sla.sweep_seconds)
    weekly = jobs["mailflow.weekly_report"]
    assert weekly.func is weekly_report_job
    assert "day_of_week='mon'" in str(weekly.trigger) and "hour='8'" in str(weekly.trigger)
    assert weekly.args[0] is job.args[0]
    leadership = job.args[0]
    assert isinstance(leadership, Leadership) and leadership.is_leader()  # SQLite: one host
    leadership.release()


# -- PostgreSQL, two processes ---------------------------------------------------------


def _seed(db: Database) -> None:
    past = THURSDAY - dt.timedelta(hours=1)
    with db.session() as s:
        for i in range(1, CASES + 1):
            case = Case(
                number=f"EXP-2026-{i:06d}", year=2026, seq=i, tramite="actualizacion_datos",
                machine="general", state="observado", applicant_email=f"p{i}@example.org",
                applicant_name=f"Persona {i}", mailbox="solicitantesrefugio",
                received_at=MONDAY, legal_receipt_day=MONDAY.date(),
                due_date=dt.date(2026, 12, 16), fields={}, flags=[],
                sla={
                    "term_days": 15, "started_on": "2026-11-23", "due": "2026-12-16",
                    "paused_on": "2026-11-23", "remaining_when_paused": 15, "pauses": [],
                    "subsanacion_deadline": "2026-11-25",
                },
            )  # fmt: skip
            s.add(case)
            s.flush()
            s.add(Timer(case_id=case.id, kind=SUBSANACION, due_at=past))
            s.add(Timer(case_id=case.id, kind=REMINDER, due_at=past - dt.timedelta(minutes=i)))


def _worker(url: str, data_dir: str, worker: str, start: object, results: object) -> None:
    settings = load_settings(ROOT / "config.yaml", env={})
    settings = settings.model_copy(update={"data_dir": Path(data_dir), "database_url": url})
    app = App(settings)
    start.wait()  # type: ignore[attr-defined]
    fired = run_sweep(app, THURSDAY, worker)
    app.database.dispose()
    results.put((worker, fired))  # type: ignore[attr-defined]


def test_two_processes_fire_each_timer_exactly_once(
    pg_db: Database, pg_url: str, tmp_path: Path
) -> None:
    _seed(pg_db)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(pg_url, str(tmp_path), f"w{n}", start, results))
        for n in (1, 2)
    ]
    for p in procs:
        p.start()
    start.set()
    fired = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(fired.values()) == 2 * CASES
    with pg_db.session(readonly=True) as s:
        timers = s.scalars(select(Timer)).all()
        timer_events = s.scalars(select(CaseEvent).where(CaseEvent.kind == "timer")).all()
        replies = s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "no_presentado")
        ).all()
        states = set(s.scalars(select(Case.state)))
        by_worker = dict(
            s.execute(select(Timer.fired_by, func.count(Timer.id)).group_by(Timer.fired_by)).all()
        )
    assert len(timers) == 2 * CASES and all(t.fired_at == THURSDAY for t in timers)
    assert sorted(e.data["timer_id"] for e in timer_events) == sorted(t.id for t in timers)
    assert sorted(r.case_id or 0 for r in replies) == sorted({t.case_id for t in timers})
    assert states == {"no_presentado"}
    assert by_worker == fired  # what each process says it fired is what the rows record
