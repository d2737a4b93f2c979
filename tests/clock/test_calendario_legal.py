"""Issue 12: días hábiles by the law in force, hand-checked.

No cutoff by default (Ley 31465; Indecopi Res. 0518-2024/SEL-INDECOPI); non-business-day
filings count on the next business day and the term runs from the day after (gob.pe); a
configured cutoff is still honoured; rules/calendar.yaml adds dated, sourced días no
laborables, regional holidays and suspensions, per office. Every expected date below was
counted by hand on the 2026 calendar (8 and 9 December and 25 December are holidays).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.clock.calendar_rules import parse_calendar_rules
from mailflow.clock.calendarios import Calendarios
from mailflow.clock.dias_habiles import Calendario, fecha_en_letras
from mailflow.config import CalendarSettings, load_settings
from mailflow.errors import DefinitionError

D = dt.date
LIMA = dt.timezone(dt.timedelta(hours=-5))
ROOT = Path(__file__).resolve().parents[2]


def T(*args: int) -> dt.datetime:
    """A moment in Lima office time."""
    return dt.datetime(*args, tzinfo=LIMA)


DEFAULT = Calendario.from_settings(CalendarSettings())
CUTOFF = Calendario.from_settings(
    CalendarSettings(cutoff=dt.time(17, 0), cutoff_source="Resolución de prueba N° 1-2026")
)
FIRST_DAY = Calendario.from_settings(
    CalendarSettings(non_business_day_filing="term_from_next_business_day")
)

RULES = """\
offices:
  lima:
    name: Sede central (Lima)
    region: Lima
  tacna:
    name: Oficina desconcentrada de Tacna
    region: Tacna
dias_no_laborables:
  - date: 2026-12-11
    name: Día no laborable para el sector público
    scope: national
    source: "D.S. N° 123-2026-PCM"
feriados_regionales:
  - date: 2026-12-14
    name: Feriado regional de prueba
    scope: region
    region: Tacna
    source: "Ordenanza Regional N° 9-2026-GRT"
suspensiones:
  - start: 2026-11-30
    end: 2026-12-04
    name: Suspensión del cómputo de plazos
    scope: office
    office: tacna
    source: "D.S. N° 200-2026-PCM"
"""


def _cals(text: str = RULES, **calendar: object) -> Calendarios:
    rules = parse_calendar_rules(text, Path("rules/calendar.yaml"))
    return Calendarios(CalendarSettings(**calendar), rules, {"tacna": "tacna"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("received", "days", "receipt", "due"),
    [
        # Fri 27 Nov 18:30 counts that Friday: 30 Nov, 1-4, 7, 10, 11, 14-18, 21, 22 December
        (T(2026, 11, 27, 18, 30), 15, D(2026, 11, 27), D(2026, 12, 22)),
        # Tue 1 Dec 17:30 counts that Tuesday: 2, 3, 4, 7, 10 December
        (T(2026, 12, 1, 17, 30), 5, D(2026, 12, 1), D(2026, 12, 10)),
        # Mon 23 Nov 10:00: 24-27 Nov, 30 Nov-4 Dec, 7, 10, 11, 14, 15, 16 December
        (T(2026, 11, 23, 10, 0), 15, D(2026, 11, 23), D(2026, 12, 16)),
        # Saturday: counts on Monday 23, the term runs from Tuesday 24
        (T(2026, 11, 21, 11, 0), 15, D(2026, 11, 23), D(2026, 12, 16)),
        # Sunday 23:59 likewise
        (T(2026, 11, 22, 23, 59), 5, D(2026, 11, 23), D(2026, 11, 30)),
        # holiday (Tue 8 Dec, and 9 Dec too): counts on Thu 10, term from Fri 11: 11, 14-17
        (T(2026, 12, 8, 9, 0), 5, D(2026, 12, 10), D(2026, 12, 17)),
        # 23:59 of a business day is still that day
        (T(2026, 12, 10, 23, 59), 1, D(2026, 12, 10), D(2026, 12, 11)),
    ],
)
def test_no_cutoff_by_default(received: dt.datetime, days: int, receipt: D, due: D) -> None:
    assert DEFAULT.cutoff is None
    assert DEFAULT.legal_receipt_day(received) == receipt
    assert DEFAULT.due_date(received, days) == due


@pytest.mark.parametrize(
    ("filed", "late"),
    [
        (T(2026, 12, 16, 23, 0), False),  # 23:00 on day 15 after notification: on time
        (T(2026, 12, 16, 23, 59), False),
        (T(2026, 12, 17, 0, 0), True),  # day 16
        (T(2026, 12, 19, 10, 0), True),  # Saturday after day 15 counts on Monday 21
    ],
)
def test_recurso_filed_late_in_the_evening_of_its_last_day_is_on_time(
    filed: dt.datetime, late: bool
) -> None:
    # notified Mon 23 Nov: the 15 días hábiles end on Wed 16 December
    assert DEFAULT.is_extemporaneo(D(2026, 11, 23), filed, 15) is late


@pytest.mark.parametrize(
    ("received", "days", "receipt", "due"),
    [
        # at/after 17:00 the next business day: Mon 30 Nov; then 1-4, 7, 10, 11, 14-18, 21-23
        (T(2026, 11, 27, 18, 30), 15, D(2026, 11, 30), D(2026, 12, 23)),
        # Tue 1 Dec 17:30 → Wed 2; then 3, 4, 7, 10, 11
        (T(2026, 12, 1, 17, 30), 5, D(2026, 12, 2), D(2026, 12, 11)),
        (T(2026, 12, 1, 16, 59), 5, D(2026, 12, 1), D(2026, 12, 10)),
    ],
)
def test_a_configured_cutoff_is_still_honoured(
    received: dt.datetime, days: int, receipt: D, due: D
) -> None:
    assert CUTOFF.legal_receipt_day(received) == receipt
    assert CUTOFF.due_date(received, days) == due
    assert CUTOFF.is_extemporaneo(D(2026, 11, 23), T(2026, 12, 16, 17, 30), 15)


def test_cutoff_from_config_text_and_its_source_in_the_explanation(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        'calendar:\n  cutoff: "17:00"\n  cutoff_source: "Resolución de prueba N° 1-2026"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    cal = Calendario.from_settings(settings.calendar)
    assert cal.due_date(T(2026, 11, 27, 18, 30), 15) == D(2026, 12, 23)
    text = "\n".join(cal.explain_due(T(2026, 11, 27, 18, 30), 15))
    assert "Hora de corte de las 17:00" in text and "Resolución de prueba N° 1-2026" in text


def test_non_business_day_filing_is_one_setting() -> None:
    # term_from_next_business_day: Monday 23 (the next business day) is day 1 → day 15 is 15 Dec
    assert FIRST_DAY.due_date(T(2026, 11, 21, 11, 0), 15) == D(2026, 12, 15)
    assert FIRST_DAY.due_date(T(2026, 11, 23, 10, 0), 15) == D(2026, 12, 16)  # unchanged
    assert "primer día del plazo" in FIRST_DAY.receipt_rule(T(2026, 11, 21, 11, 0))
    assert "regla de gob.pe" in DEFAULT.receipt_rule(T(2026, 11, 21, 11, 0))


def test_extra_non_working_days_from_the_environment_feed_the_national_calendar() -> None:
    settings = load_settings(
        ROOT / "config.yaml", env={"MAILFLOW_EXTRA_NON_WORKING_DAYS": "2026-12-11, 2026-12-24"}
    )
    cal = Calendarios.from_settings(settings).for_office("lima")
    assert cal.non_working_reason(D(2026, 12, 11)) == "día no laborable (config)"
    # Mon 23 Nov +15 without the 11th: 24-27, 30, 1-4, 7, 10, 14, 15, 16, 17
    assert cal.due_date(T(2026, 11, 23, 10, 0), 15) == D(2026, 12, 17)
    assert not cal.is_business_day(D(2026, 12, 24))


def test_regional_holiday_moves_a_regional_office_case_and_not_a_lima_one() -> None:
    cals = _cals(RULES.split("suspensiones:")[0])
    lima, tacna = cals.for_office("lima"), cals.for_office("tacna")
    received = T(2026, 12, 7, 10, 0)
    # Lima: (8, 9 holidays) 10, (11 national día no laborable) 14, 15, 16
    assert lima.due_date(received, 4) == D(2026, 12, 16)
    # Tacna: 10, (11 national), (14 regional holiday), 15, 16, 17
    assert tacna.due_date(received, 4) == D(2026, 12, 17)
    assert tacna.non_working_reason(D(2026, 12, 14)) == (
        "feriado regional: Feriado regional de prueba (Ordenanza Regional N° 9-2026-GRT)"
    )
    assert lima.non_working_reason(D(2026, 12, 14)) is None
    assert cals.office_of_mailbox("tacna") == "tacna"
    assert cals.office_of_mailbox("refugiados") == "lima"


def test_suspension_period_stops_the_clock_for_the_whole_period() -> None:
    cals = _cals()
    tacna, lima = cals.for_office("tacna"), cals.for_office("lima")
    received = T(2026, 11, 23, 10, 0)
    # Tacna: 24-27 Nov (4), 30 Nov-4 Dec suspended, 7, 10 (5, 6), 11 national, 14 regional,
    # 15-18 (7-10), 21-24 (11-14), 25 Navidad, 28 (15)
    assert tacna.due_date(received, 15) == D(2026, 12, 28)
    # Lima only loses the national 11 December: ... 14, 15, 16, 17
    assert lima.due_date(received, 15) == D(2026, 12, 17)
    # a filing inside the suspension is received that day; its term starts after it: 7, 10, 15
    assert tacna.legal_receipt_day(T(2026, 12, 1, 10, 0)) == D(2026, 12, 1)
    assert tacna.due_date(T(2026, 12, 1, 10, 0), 3) == D(2026, 12, 15)
    lines = tacna.explain_due(received, 15)
    assert (
        "No se cuentan del 2026-11-30 (lunes) al 2026-12-04 (viernes): suspensión de plazos: "
        "Suspensión del cómputo de plazos (D.S. N° 200-2026-PCM)."
    ) in lines
    assert lines[1] == (
        "Calendario de la unidad receptora: Oficina desconcentrada de Tacna, región Tacna."
    )


def test_fecha_en_letras() -> None:
    assert fecha_en_letras(D(2026, 11, 27)) == "viernes 27 de noviembre de 2026"
    assert fecha_en_letras(D(2026, 12, 2)) == "miércoles 2 de diciembre de 2026"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("dias_no_laborables:\n  - date: 2026-12-24\n    name: X\n", 2, "falta source"),
        ("dias_no_laborables:\n  - date: 2026-13-01\n    name: X\n    source: S\n", 2,
         "valor inválido '2026-13-01'"),
        ("dias_no_laborables:\n  - date: mañana\n    name: X\n    source: S\n", 2,
         "fecha inválida 'mañana'"),
        ("dias_no_laborables:\n  - date: 2026-12-24\n    name: X\n    source: S\n"
         "    scope: mundial\n", 5, "scope 'mundial' no válido"),
        ("feriados_regionales:\n  - date: 2026-12-24\n    name: X\n    source: S\n"
         "    scope: region\n    region: Marte\n", 6, "la región 'Marte' no es la de ninguna"),
        ("feriados_regionales:\n  - date: 2026-12-24\n    name: X\n    source: S\n", 2,
         "un feriado regional necesita scope region u office"),
        ("suspensiones:\n  - start: 2026-12-10\n    end: 2026-12-01\n    name: X\n"
         "    source: S\n", 3, "end (2026-12-01) es anterior a start"),
        ("dias_no_laborables:\n  - date: 2026-12-24\n    name: X\n    source: S\n"
         "    scope: office\n    office: cusco\n", 6, "oficina 'cusco' desconocida"),
        ("dias_no_laborables:\n  - date: 2026-12-24\n    name: X\n    source: S\n"
         "    fuente: S\n", 5, "clave desconocida 'fuente'"),
        ("feriados:\n  - date: 2026-12-24\n", 1, "sección desconocida 'feriados'"),
        ("dias_no_laborables:\n  - {date: 2026-12-24, name: X, source: S}\n"
         "  - {date: 2026-12-24, name: Y, source: T}\n", 3, "entrada repetida"),
    ],
)  # fmt: skip
def test_calendar_file_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DefinitionError) as exc:
        parse_calendar_rules(text, Path("rules/calendar.yaml"))
    assert str(exc.value).startswith(f"rules/calendar.yaml:{line}: {message}")


def test_shipped_calendar_file_is_valid_and_has_lima() -> None:
    from mailflow.clock.calendar_rules import load_calendar_rules

    rules = load_calendar_rules(ROOT / "rules" / "calendar.yaml")
    assert rules.offices["lima"].region == "Lima"
    assert all(e.source for e in rules.entries)


def test_mailbox_office_must_exist() -> None:
    from mailflow.errors import ConfigError

    rules = parse_calendar_rules(RULES, Path("rules/calendar.yaml"))
    with pytest.raises(ConfigError, match="oficina 'cusco' no definida"):
        Calendarios(CalendarSettings(), rules, {"cusco_box": "cusco"})
    with pytest.raises(ConfigError, match=r"calendar\.default_office"):
        Calendarios(CalendarSettings(default_office="arequipa"), rules)
