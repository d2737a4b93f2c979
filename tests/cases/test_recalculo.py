"""Issue 12: a legal calendar that changes under open cases (decrees, regional days, cutoff).

Every expected date was counted by hand on the 2026 calendar (8, 9 and 25 December are
national holidays). Cases are opened through the real pipeline; the changed calendar is a new
App on the same database, as after an operator edits rules/calendar.yaml and restarts.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.cases.delivery_events import on_accepted
from mailflow.cases.recalculo import FLAG_WINDOW_EXTENDED, apply_calendar
from mailflow.clock.deadlines import ESCALATION, REMINDER, local_instant
from mailflow.clock.explain import explain_deadline
from mailflow.config import Mailbox
from mailflow.pipeline.route import process_inbox_message
from mailflow.runners.sweep import run_sweep
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage, Timer
from tests.support.cases_support import (
    APPLICANT,
    DATOS,
    LIMA,
    MONDAY,
    ROOT,
    mail,
    make_app,
    outbox,
    parse_out,
    store,
)

OFFICES = """\
offices:
  lima: {name: Sede central (Lima), region: Lima}
  tacna: {name: Oficina desconcentrada de Tacna, region: Tacna}
"""
DECREE_11 = """\
dias_no_laborables:
  - date: 2026-12-11
    name: Día no laborable para el sector público
    scope: national
    source: "D.S. N° 123-2026-PCM"
"""
TACNA_14 = """\
feriados_regionales:
  - date: 2026-12-14
    name: Feriado regional de prueba
    scope: region
    region: Tacna
    source: "Ordenanza Regional N° 9-2026-GRT"
"""
SUSPENSION = """\
suspensiones:
  - start: 2026-11-30
    end: 2026-12-04
    name: Suspensión del cómputo de plazos administrativos
    scope: national
    source: "D.S. N° 200-2026-PCM"
"""
TACNA_BOX = Mailbox(name="tacna", address="tacna@cepr.mailflow.localhost", office="tacna")
LATER = dt.datetime(2026, 11, 25, 9, 0, tzinfo=LIMA)


def _rules(tmp_path: Path, name: str, calendar: str) -> Path:
    rules = tmp_path / name
    shutil.copytree(ROOT / "rules", rules)
    (rules / "calendar.yaml").write_text(calendar, encoding="utf-8")
    return rules


def _app(tmp_path: Path, db: Database, rules_text: str, name: str, **updates: object) -> App:
    settings = make_app(tmp_path, db).settings
    mailboxes = (*settings.mailboxes, TACNA_BOX)
    return make_app(
        tmp_path, db, rules_dir=_rules(tmp_path, name, rules_text), mailboxes=mailboxes, **updates
    )


def _open(
    app: App,
    body: str = DATOS,
    *,
    at: dt.datetime = MONDAY,
    mailbox: str = "INBOX",
    sender: str = APPLICANT,
) -> int:
    """A new actualización de datos case; a different `sender` per case (the same person's
    second request would join the first one, issue 10's resend rule)."""
    with app.database.session() as s:
        row = store(s, mail("Actualización de datos", body, sender=sender), arrived=at)
        row.mailbox = mailbox
        process_inbox_message(app, s, row, at)
        assert row.case_id is not None
        return row.case_id


def _observation_accepted(app: App, at: dt.datetime = MONDAY) -> None:
    """The SMTP server accepted the observation at `at`: its subsanación window starts (issue 10)."""
    with app.database.session() as s:
        [observation] = [r for r in outbox(s) if r.kind == "observacion"]
        observation.status, observation.sent_at = "sent", at
        on_accepted(s, app.settings, observation, at)


def _case(app: App, case_id: int) -> Case:
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def _pending(app: App, case_id: int, kind: str) -> list[dt.datetime]:
    with app.database.session(readonly=True) as s:
        return list(
            s.scalars(
                select(Timer.due_at).where(
                    Timer.case_id == case_id,
                    Timer.kind == kind,
                    Timer.fired_at.is_(None),
                    Timer.cancelled_at.is_(None),
                )
            )
        )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _as_naive_utc(values: list[dt.datetime]) -> list[dt.datetime]:
    return [v.astimezone(dt.UTC).replace(tzinfo=None) if v.tzinfo else v for v in values]


def test_dia_no_laborable_declared_after_the_case_opened_moves_it_and_is_audited(
    tmp_path: Path, any_db: Database
) -> None:
    before = _app(tmp_path, any_db, OFFICES, "rules_before")
    case_id = _open(before)
    assert _case(before, case_id).due_date == dt.date(2026, 12, 16)  # Mon 23 Nov + 15
    assert apply_calendar(before, LATER) == []  # nothing changed: nothing moves

    after = _app(tmp_path, any_db, OFFICES + DECREE_11, "rules_after")
    moved = apply_calendar(after, LATER)
    # 24-27 Nov, 30 Nov-4 Dec, 7, 10, (11 decree), 14, 15, 16, 17
    assert [(m.what, m.before, m.after) for m in moved] == [
        ("vencimiento", "2026-12-16", "2026-12-17")
    ]
    assert moved[0].sources == (
        "2026-12-11 no se computa: día no laborable: Día no laborable para el sector público "
        "(D.S. N° 123-2026-PCM)",
    )
    case = _case(after, case_id)
    assert case.due_date == dt.date(2026, 12, 17)
    cal = after.calendario
    # the next sweep uses the new dates: escalation the day after the new due date, reminder
    # two business days before it (16 Dec is the 1st, 15 Dec the 2nd)
    assert _as_naive_utc(_pending(after, case_id, ESCALATION)) == [
        _utc(local_instant(cal, dt.date(2026, 12, 18)))
    ]
    assert _as_naive_utc(_pending(after, case_id, REMINDER)) == [
        _utc(local_instant(cal, dt.date(2026, 12, 15), dt.time(8, 0)))
    ]
    with after.database.session(readonly=True) as s:
        [event] = s.scalars(
            select(CaseEvent).where(
                CaseEvent.case_id == case_id, CaseEvent.event == "recalculo_calendario"
            )
        ).all()
        lines = explain_deadline(s, s.get(Case, case_id), after.calendario_de(None))  # type: ignore[arg-type]
    assert "D.S. N° 123-2026-PCM" in event.reason and "2026-12-16 → 2026-12-17" in event.reason
    assert event.data["sources"] == list(moved[0].sources)
    assert event.reason in lines
    assert lines[-1] == "Fecha límite actual: 2026-12-17."
    version = _case(after, case_id).lock_version
    assert apply_calendar(after, LATER) == []  # idempotent: a second run moves nothing
    assert _case(after, case_id).lock_version == version  # and writes nothing


def test_regional_holiday_moves_the_regional_office_case_and_not_the_lima_one(
    tmp_path: Path, any_db: Database
) -> None:
    before = _app(tmp_path, any_db, OFFICES, "rules_before")
    lima_id = _open(before)
    tacna_id = _open(before, mailbox="tacna", sender="tacna@example.org")
    assert _case(before, lima_id).office == "lima"
    assert _case(before, tacna_id).office == "tacna"
    assert _case(before, tacna_id).due_date == dt.date(2026, 12, 16)

    after = _app(tmp_path, any_db, OFFICES + TACNA_14, "rules_after")
    moved = apply_calendar(after, LATER)
    # Tacna: 24-27 Nov, 30 Nov-4 Dec, 7, 10, 11, (14 regional), 15, 16, 17
    assert [(m.case_number, m.office, m.before, m.after) for m in moved] == [
        (_case(after, tacna_id).number, "tacna", "2026-12-16", "2026-12-17")
    ]
    assert "Ordenanza Regional N° 9-2026-GRT" in moved[0].line()
    assert _case(after, lima_id).due_date == dt.date(2026, 12, 16)
    assert _case(after, tacna_id).due_date == dt.date(2026, 12, 17)
    # a new Tacna case is computed with its office's calendar from the start
    new_id = _open(after, mailbox="tacna", sender="nuevo.tacna@example.org")
    assert _case(after, new_id).due_date == dt.date(2026, 12, 17)


def test_suspension_declared_during_the_term_stops_the_clock(
    tmp_path: Path, sqlite_db: Database
) -> None:
    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    case_id = _open(before)
    after = _app(tmp_path, sqlite_db, OFFICES + SUSPENSION, "rules_after")
    [m] = apply_calendar(after, LATER)
    # 24-27 Nov (4), 30 Nov-4 Dec suspended, 7, 10, 11, 14-18, 21, 22, 23 (15)
    assert (m.before, m.after) == ("2026-12-16", "2026-12-23")
    assert any("D.S. N° 200-2026-PCM" in s for s in m.sources)
    with after.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        text = "\n".join(explain_deadline(s, case, after.calendario))
    assert "No se cuentan del 2026-11-30 (lunes) al 2026-12-04 (viernes): suspensión" in text


def test_switching_off_the_cutoff_recomputes_open_cases(
    tmp_path: Path, sqlite_db: Database
) -> None:
    friday = dt.datetime(2026, 11, 27, 18, 30, tzinfo=LIMA)
    base = make_app(tmp_path, sqlite_db).settings.calendar
    with_cutoff = _app(
        tmp_path, sqlite_db, OFFICES, "rules_cutoff",
        calendar=base.model_copy(update={"cutoff": dt.time(17, 0)}),
    )  # fmt: skip
    case_id = _open(with_cutoff, at=friday)
    case = _case(with_cutoff, case_id)
    assert (case.legal_receipt_day, case.due_date) == (dt.date(2026, 11, 30), dt.date(2026, 12, 23))

    no_cutoff = _app(tmp_path, sqlite_db, OFFICES, "rules_now")
    moved = apply_calendar(no_cutoff, LATER)
    assert [(m.what, m.before, m.after) for m in moved] == [
        ("recepción", "2026-11-30", "2026-11-27"),
        ("vencimiento", "2026-12-23", "2026-12-22"),
    ]
    assert moved[0].sources[0].startswith("cambio de la regla de recepción: Sin hora de corte")
    case = _case(no_cutoff, case_id)
    assert (case.legal_receipt_day, case.due_date) == (dt.date(2026, 11, 27), dt.date(2026, 12, 22))


def test_closed_no_presentado_case_whose_window_a_late_decree_extends_is_flagged(
    tmp_path: Path, sqlite_db: Database
) -> None:
    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    body = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
    case_id = _open(before, body)
    assert _case(before, case_id).state == "observado"
    _observation_accepted(before)
    # window of 2 días hábiles from Mon 23: 24, 25; expires at 00:00 of Thu 26
    assert run_sweep(before, dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC), "w1") == 1
    assert _case(before, case_id).state == "no_presentado"

    decree = DECREE_11.replace("2026-12-11", "2026-11-25")
    after = _app(tmp_path, sqlite_db, OFFICES + decree, "rules_after")
    moved = apply_calendar(after, dt.datetime(2026, 11, 27, 9, 0, tzinfo=LIMA))
    # with 25 Nov not counted the window is 24, 26: it would have ended on Thu 26
    assert [(m.what, m.before, m.after) for m in moved] == [
        ("no presentado", "2026-11-25", "2026-11-26")
    ]
    case = _case(after, case_id)
    assert FLAG_WINDOW_EXTENDED in case.flags and case.state == "no_presentado"
    with after.database.session(readonly=True) as s:
        [flag] = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "flag")
        ).all()
        assert "D.S. N° 123-2026-PCM" in flag.reason
        notices = s.scalars(
            select(CaseEvent.reason).where(CaseEvent.case_id == case_id, CaseEvent.kind == "notify")
        ).all()
    assert [n for n in notices if "no presentado" in n and "2026-11-26" in n]
    assert apply_calendar(after, dt.datetime(2026, 11, 27, 9, 0, tzinfo=LIMA)) == []


def test_open_observation_window_moves_with_a_decree(tmp_path: Path, sqlite_db: Database) -> None:
    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    body = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
    case_id = _open(before, body)
    _observation_accepted(before)
    decree = DECREE_11.replace("2026-12-11", "2026-11-25")
    after = _app(tmp_path, sqlite_db, OFFICES + decree, "rules_after")
    moved = apply_calendar(after, dt.datetime(2026, 11, 24, 9, 0, tzinfo=LIMA))
    assert ("subsanación", "2026-11-25", "2026-11-26") in [
        (m.what, m.before, m.after) for m in moved
    ]
    # the expiry timer now fires at 00:00 of Fri 27, so a sweep on Thu 26 leaves it open
    assert run_sweep(after, dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC), "w1") == 0
    assert _case(after, case_id).state == "observado"
    assert run_sweep(after, dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC), "w1") == 1
    assert _case(after, case_id).state == "no_presentado"


@pytest.mark.parametrize(
    ("received", "words", "due"),
    [
        (dt.datetime(2026, 11, 27, 18, 30, tzinfo=LIMA), "viernes 27 de noviembre de 2026",
         "22 de diciembre de 2026"),
        # Saturday: counts on Monday 30, term from Tuesday 1 December: 1-4, 7, 10, 11, 14-18,
        # 21, 22, 23
        (dt.datetime(2026, 11, 28, 11, 0, tzinfo=LIMA), "lunes 30 de noviembre de 2026",
         "23 de diciembre de 2026"),
    ],
)  # fmt: skip
def test_acknowledgment_states_the_legal_receipt_day_in_words_and_the_rule(
    tmp_path: Path, sqlite_db: Database, received: dt.datetime, words: str, due: str
) -> None:
    app = _app(tmp_path, sqlite_db, OFFICES, "rules")
    _open(app, at=received)
    with app.database.session(readonly=True) as s:
        [ack] = outbox(s)
        assert s.scalar(select(InboxMessage.id)) is not None
    text = parse_out(ack).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Su solicitud se tiene por presentada el {words}." in text
    assert f"Fecha límite de respuesta: {due}" in text
    assert "Ley N° 31465" in text or "regla de gob.pe" in text


def test_extemporaneo_flag_is_recomputed_when_a_decree_extends_the_filing_window(
    tmp_path: Path, sqlite_db: Database
) -> None:
    recurso = (
        "Interpongo recurso de reconsideración.\n"
        "Motivo: no estoy de acuerdo con la denegatoria de mi solicitud\n"
        "Nombres y apellidos: Juan Pérez Quispe\n"
        "Pasaporte: 123456789\n"
        "Teléfono: 987654321\n"
        "Fecha de notificación: 23/11/2026\n"
    )
    # notified Mon 23 Nov: the 15 días hábiles end on Wed 16 Dec; filed Thu 17 Dec: late
    filed = dt.datetime(2026, 12, 17, 10, 0, tzinfo=LIMA)
    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    with before.database.session() as s:
        row = store(s, mail("Recurso de Reconsideración", recurso), arrived=filed)
        process_inbox_message(before, s, row, filed)
        case_id = row.case_id
    assert case_id is not None
    assert "extemporaneo" in _case(before, case_id).flags

    after = _app(tmp_path, sqlite_db, OFFICES + DECREE_11, "rules_after")
    moved = apply_calendar(after, filed)
    # with 11 Dec not counted the 15th día hábil is Thu 17 Dec: filed on time
    assert ("extemporáneo", "sí", "no") in [(m.what, m.before, m.after) for m in moved]
    assert "extemporaneo" not in _case(after, case_id).flags
    with after.database.session(readonly=True) as s:
        reasons = list(
            s.scalars(
                select(CaseEvent.reason).where(
                    CaseEvent.case_id == case_id, CaseEvent.event == "recalculo_calendario"
                )
            )
        )
    assert any("extemporáneo sí → no" in r and "D.S. N° 123-2026-PCM" in r for r in reasons)


def test_calendar_apply_command_and_start_up_report_what_moved(
    tmp_path: Path, sqlite_db: Database
) -> None:
    from click.testing import CliRunner

    from mailflow.cli import cli
    from mailflow.ops.runcmd import apply_calendar_at_startup

    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    case_id = _open(before)
    number = _case(before, case_id).number
    rules = _rules(tmp_path, "rules_after", OFFICES + DECREE_11)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database_url: {sqlite_db.url.render_as_string(False)}\n"
        f"data_dir: {tmp_path}\nrules_dir: {rules}\n"
        f"state_machines_dir: {ROOT / 'state_machines'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "mailboxes:\n"
        "  - {name: solicitantesrefugio, address: solicitantesrefugio@cepr.mailflow.localhost}\n"
        "  - {name: mesadepartes, address: mesadepartes@cepr.mailflow.localhost}\n"
        "  - {name: refugiados, address: refugiados@cepr.mailflow.localhost}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "calendar", "apply"])
    assert result.exit_code == 0, result.output
    assert f"{number} (lima): vencimiento 2026-12-16 → 2026-12-17" in result.output
    assert "D.S. N° 123-2026-PCM" in result.output
    assert "calendario aplicado: 1 expediente(s) con cambios, 1 cambio(s)" in result.output
    again = CliRunner().invoke(cli, ["--config", str(config), "calendar", "apply"])
    assert "calendario aplicado: 0 expediente(s) con cambios, 0 cambio(s)" in again.output
    # start-up does the same: a second decree (14 Dec) moves the case again, to 18 Dec
    decree_14 = DECREE_11 + DECREE_11.split("\n", 1)[1].replace("12-11", "12-14")
    restarted = _app(tmp_path, sqlite_db, OFFICES + decree_14, "r3")
    assert apply_calendar_at_startup(restarted) == 1
    assert _case(restarted, case_id).due_date == dt.date(2026, 12, 18)


def test_case_page_explains_the_rule_its_source_and_the_recomputation(
    tmp_path: Path, sqlite_db: Database
) -> None:
    from mailflow.web.casefile import case_file

    before = _app(tmp_path, sqlite_db, OFFICES, "rules_before")
    case_id = _open(before, at=dt.datetime(2026, 11, 27, 18, 30, tzinfo=LIMA))
    after = _app(tmp_path, sqlite_db, OFFICES + DECREE_11, "rules_after")
    apply_calendar(after, LATER)
    with after.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        lines = case_file(s, after, case, LATER)["explanation"]
    text = "\n".join(lines)
    assert "Recibido el 2026-11-27 (viernes) a las 18:30" in text
    assert "sin hora de corte (Ley N° 31465" in text and "0518-2024/SEL-INDECOPI" in text
    assert "TUO de la Ley N° 27444" in text
    assert "Calendario de la unidad receptora: Sede central (Lima), región Lima." in text
    # 30 Nov, 1-4, 7, 10, (11 decree), 14-18, 21, 22, 23
    assert "vencimiento 2026-12-22 → 2026-12-23 (2026-12-11 no se computa" in text
    assert lines[-1] == "Fecha límite actual: 2026-12-23."
