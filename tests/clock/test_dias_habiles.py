"""Tests for the business-day calendar (días hábiles) of Peru."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.clock.dias_habiles import RULE_COUNTING, Calendario
from mailflow.config import CalendarSettings
from mailflow.errors import ConfigError

D = dt.date
T = dt.datetime
UTC = dt.UTC
CAL = Calendario()
EXTRA = D(2026, 12, 11)  # a Friday declared día no laborable for the public sector
CAL_EXTRA = Calendario.from_settings(CalendarSettings(extra_non_working_days=(EXTRA,)))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 4, 2), "Jueves Santo"),
        (D(2026, 4, 3), "Viernes Santo"),
        (D(2027, 3, 25), "Jueves Santo"),
        (D(2027, 3, 26), "Viernes Santo"),
        (D(2026, 6, 7), "Batalla de Arica y Día de la Bandera"),
        (D(2026, 6, 29), "San Pedro y San Pablo"),
        (D(2026, 7, 23), "Día de la Fuerza Aérea del Perú"),
        (D(2026, 7, 28), "Día de la Independencia"),
        (D(2026, 7, 29), "Día de la Gran Parada Militar"),
        (D(2026, 8, 6), "Batalla de Junín"),
        (D(2026, 8, 30), "Santa Rosa de Lima"),
        (D(2026, 10, 8), "Combate de Angamos"),
        (D(2026, 11, 1), "Todos Los Santos"),
        (D(2026, 12, 8), "Inmaculada Concepción"),
        (D(2026, 12, 9), "Batalla de Ayacucho"),
        (D(2026, 12, 25), "Navidad del Señor"),
    ],
)
def test_holidays_package_lists_the_expected_peruvian_holidays(day: D, expected: str) -> None:
    assert holidays.country_holidays("PE", language="es", years=day.year).get(day) == expected


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (D(2026, 11, 23), None),
        (D(2026, 11, 21), "sábado"),
        (D(2026, 11, 22), "domingo"),
        (D(2026, 11, 1), "domingo"),  # Todos los Santos on a Sunday: the weekend wins
        (D(2026, 12, 8), "feriado: Inmaculada Concepción"),
        (D(2026, 12, 9), "feriado: Batalla de Ayacucho"),
        (D(2026, 4, 2), "feriado: Jueves Santo"),
        (D(2027, 3, 26), "feriado: Viernes Santo"),
        (D(2026, 7, 23), "feriado: Día de la Fuerza Aérea del Perú"),
        (D(2026, 8, 6), "feriado: Batalla de Junín"),
        (D(2027, 6, 7), "feriado: Batalla de Arica y Día de la Bandera"),
        (D(2027, 1, 1), "feriado: Año Nuevo"),
        (D(2028, 2, 29), None),
        (D(2026, 12, 24), None),
        (EXTRA, None),  # not an extra day in the default calendar
    ],
)
def test_non_working_reason_and_is_business_day(day: D, reason: str | None) -> None:
    assert CAL.non_working_reason(day) == reason
    assert CAL.is_business_day(day) is (reason is None)


def test_extra_non_working_day_from_config() -> None:
    assert CAL_EXTRA.non_working_reason(EXTRA) == "día no laborable (config)"
    assert not CAL_EXTRA.is_business_day(EXTRA)
    assert CAL_EXTRA.is_business_day(D(2026, 12, 10))


@pytest.mark.parametrize(
    ("received", "receipt", "due15"),
    [
        (T(2026, 11, 23, 10, 0), D(2026, 11, 23), D(2026, 12, 16)),  # the brief's example
        (T(2026, 11, 23, 0, 0), D(2026, 11, 23), D(2026, 12, 16)),
        # no cutoff (Ley 31465): a Friday filing counts that Friday at any hour
        (T(2026, 11, 20, 16, 59, 59), D(2026, 11, 20), D(2026, 12, 15)),
        (T(2026, 11, 20, 17, 0), D(2026, 11, 20), D(2026, 12, 15)),
        (T(2026, 11, 20, 23, 59), D(2026, 11, 20), D(2026, 12, 15)),
        (T(2026, 11, 21, 9, 0), D(2026, 11, 23), D(2026, 12, 16)),  # Saturday
        (T(2026, 11, 22, 23, 59), D(2026, 11, 23), D(2026, 12, 16)),  # Sunday
        (T(2026, 12, 8, 10, 0), D(2026, 12, 10), D(2027, 1, 4)),  # holiday, next one too
        (T(2026, 12, 30, 10, 0), D(2026, 12, 30), D(2027, 1, 21)),  # crosses 1 January
        # Thu 31 Dec 18:00 counts that day: 4-8, 11-15, 18-22 January 2027
        (T(2026, 12, 31, 18, 0), D(2026, 12, 31), D(2027, 1, 22)),
        # Wed 1 April 17:30 counts that day; 2-3 April (Holy Week) skipped: 6-10, 13-17, 20-24
        (T(2026, 4, 1, 17, 30), D(2026, 4, 1), D(2026, 4, 24)),
        # UTC instants are read in Lima time: 23:30Z is 18:30 of the same Monday
        (T(2026, 11, 23, 23, 30, tzinfo=UTC), D(2026, 11, 23), D(2026, 12, 16)),
        (T(2026, 11, 23, 21, 59, tzinfo=UTC), D(2026, 11, 23), D(2026, 12, 16)),  # 16:59 Lima
        (T(2026, 11, 24, 3, 0, tzinfo=UTC), D(2026, 11, 23), D(2026, 12, 16)),  # 22:00 Lima 23rd
        (T(2026, 11, 24, 5, 0, tzinfo=UTC), D(2026, 11, 24), D(2026, 12, 17)),  # 00:00 Lima 24th
        (T(2026, 11, 21, 4, 0, tzinfo=UTC), D(2026, 11, 20), D(2026, 12, 15)),  # Fri 23:00 Lima
        (
            T(2026, 11, 23, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),  # 10:00 Lima
            D(2026, 11, 23),
            D(2026, 12, 16),
        ),
    ],
)
def test_legal_receipt_day_and_due_date(received: T, receipt: D, due15: D) -> None:
    assert CAL.legal_receipt_day(received) == receipt
    assert CAL.due_date(received, 15) == due15


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        (T(2026, 11, 23, 10), 0, D(2026, 11, 23)),
        (T(2026, 11, 21, 10), 0, D(2026, 11, 23)),
        (T(2026, 11, 23, 10), 1, D(2026, 11, 24)),
        (T(2026, 11, 23, 10), 5, D(2026, 11, 30)),
        (T(2026, 12, 30, 10), 5, D(2027, 1, 7)),  # 1 January skipped
        (T(2026, 12, 31, 18), 1, D(2027, 1, 4)),  # counts on the 31st: next is 4 January
        (T(2026, 3, 30, 10), 5, D(2026, 4, 8)),  # Jueves/Viernes Santo 2026
        (T(2026, 4, 1, 17, 30), 1, D(2026, 4, 6)),  # counts on 1 April; 2-3 April holidays
        (T(2027, 3, 23, 10), 5, D(2027, 4, 1)),  # Jueves/Viernes Santo 2027
        (T(2026, 7, 20, 10), 10, D(2026, 8, 7)),  # 23, 28, 29 July and 6 August
        (T(2026, 6, 26, 10), 3, D(2026, 7, 2)),  # San Pedro y San Pablo
        (T(2027, 6, 4, 10), 1, D(2027, 6, 8)),  # 7 June on a Monday
        (T(2027, 6, 28, 10), 1, D(2027, 6, 30)),  # 29 June on a Tuesday
        (T(2027, 8, 27, 10), 1, D(2027, 8, 31)),  # Santa Rosa on a Monday
        (T(2026, 10, 7, 10), 1, D(2026, 10, 9)),  # Combate de Angamos
        (T(2027, 10, 29, 10), 1, D(2027, 11, 2)),  # Todos los Santos on a Monday
        (T(2026, 12, 24, 10), 1, D(2026, 12, 28)),  # Navidad on a Friday
        (T(2028, 2, 25, 10), 2, D(2028, 2, 29)),  # leap day is a business day
        (T(2028, 2, 29, 10), 1, D(2028, 3, 1)),
        (T(2028, 2, 28, 17, 0), 1, D(2028, 2, 29)),  # Monday 17:00 counts that Monday
    ],
)
def test_due_date_table(received: T, days: int, due: D) -> None:
    assert CAL.due_date(received, days) == due


def test_extra_non_working_day_shifts_the_due_date() -> None:
    received = T(2026, 11, 23, 10)
    assert CAL.due_date(received, 15) == D(2026, 12, 16)
    assert CAL_EXTRA.due_date(received, 15) == D(2026, 12, 17)
    assert CAL_EXTRA.legal_receipt_day(T(2026, 12, 11, 9)) == D(2026, 12, 14)


def test_custom_cutoff_and_timezone() -> None:
    cal = Calendario(timezone="UTC", cutoff=dt.time(13, 0))
    assert cal.legal_receipt_day(T(2026, 11, 23, 12, 59)) == D(2026, 11, 23)
    assert cal.legal_receipt_day(T(2026, 11, 23, 13, 0)) == D(2026, 11, 24)
    # 12:30 in Lima is 17:30 UTC: after a 13:00 UTC cutoff
    lima = T(2026, 11, 23, 12, 30, tzinfo=CAL.tz)
    assert cal.legal_receipt_day(lima) == D(2026, 11, 24)
    assert CAL.legal_receipt_day(lima) == D(2026, 11, 23)


def test_due_date_rejects_negative_terms() -> None:
    with pytest.raises(ValueError, match="negativo"):
        CAL.due_date(T(2026, 11, 23, 10), -1)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2026, 11, 23), 15, D(2026, 12, 16)),
        (D(2026, 11, 23), 0, D(2026, 11, 23)),
        (D(2026, 11, 21), 0, D(2026, 11, 21)),
        (D(2026, 11, 21), 1, D(2026, 11, 23)),
        (D(2026, 12, 7), 1, D(2026, 12, 10)),
        (D(2026, 12, 31), 1, D(2027, 1, 4)),
        (D(2026, 12, 16), -15, D(2026, 11, 23)),
        (D(2027, 1, 4), -1, D(2026, 12, 31)),
        (D(2026, 1, 2), -1, D(2025, 12, 31)),
        (D(2026, 12, 10), -1, D(2026, 12, 7)),
        (D(2026, 11, 22), -1, D(2026, 11, 20)),
    ],
)
def test_add_business_days(start: D, n: int, expected: D) -> None:
    assert CAL.add_business_days(start, n) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 11, 23), D(2026, 11, 24)),
        (D(2026, 11, 20), D(2026, 11, 23)),
        (D(2026, 4, 1), D(2026, 4, 6)),
        (D(2026, 12, 31), D(2027, 1, 4)),
        (D(2026, 12, 7), D(2026, 12, 10)),
    ],
)
def test_next_business_day(day: D, expected: D) -> None:
    assert CAL.next_business_day(day) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (D(2026, 11, 23), D(2026, 12, 16), 15),
        (D(2026, 12, 16), D(2026, 11, 23), -15),
        (D(2026, 11, 23), D(2026, 11, 23), 0),
        (D(2026, 11, 20), D(2026, 11, 22), 0),  # Friday to Sunday: none in (a, b]
        (D(2026, 11, 21), D(2026, 11, 23), 1),
        (D(2026, 11, 22), D(2026, 11, 20), 0),
        (D(2026, 12, 7), D(2026, 12, 10), 1),  # 8 and 9 December
        (D(2026, 12, 30), D(2027, 1, 4), 2),
        (D(2027, 1, 4), D(2026, 12, 30), -2),
        (D(2028, 2, 28), D(2028, 3, 1), 2),
    ],
)
def test_business_days_between(a: D, b: D, expected: int) -> None:
    assert CAL.business_days_between(a, b) == expected


@pytest.mark.parametrize(
    ("notified", "filed", "late"),
    [
        (D(2026, 11, 23), T(2026, 12, 16, 10, 0), False),  # day 15
        (D(2026, 11, 23), T(2026, 12, 16, 16, 59), False),
        (D(2026, 11, 23), T(2026, 12, 16, 17, 0), False),  # day 15 at 17:00: still day 15
        (D(2026, 11, 23), T(2026, 12, 16, 23, 0), False),  # day 15 at 23:00: on time
        (D(2026, 11, 23), T(2026, 12, 17, 9, 0), True),  # day 16
        (D(2026, 11, 23), T(2026, 12, 12, 10, 0), False),  # Saturday before the limit
        (D(2026, 11, 23), T(2026, 12, 19, 10, 0), True),  # Saturday after the limit
        (D(2026, 11, 23), T(2026, 12, 16, 21, 0, tzinfo=UTC), False),  # 16:00 Lima
        (D(2026, 11, 23), T(2026, 12, 16, 23, 30, tzinfo=UTC), False),  # 18:30 Lima
        (D(2026, 11, 23), T(2026, 12, 17, 5, 0, tzinfo=UTC), True),  # 00:00 Lima on day 16
        (D(2026, 11, 21), T(2026, 12, 15, 10, 0), False),  # notified on a Saturday
        (D(2026, 11, 21), T(2026, 12, 16, 10, 0), True),
        (D(2026, 11, 23), T(2026, 11, 23, 12, 0), False),  # same day
    ],
)
def test_is_extemporaneo(notified: D, filed: T, late: bool) -> None:
    assert CAL.is_extemporaneo(notified, filed) is late


def test_is_extemporaneo_with_another_limit() -> None:
    assert not CAL.is_extemporaneo(D(2026, 3, 30), T(2026, 4, 8, 10), limit_days=5)
    assert CAL.is_extemporaneo(D(2026, 3, 30), T(2026, 4, 9, 10), limit_days=5)


def test_explain_due_for_the_brief_example() -> None:
    assert CAL.explain_due(T(2026, 11, 23, 10, 0), 15) == [
        "Recibido el 2026-11-23 (lunes) a las 10:00 hora de America/Lima.",
        "Presentación digital en día hábil: se tiene por presentada ese mismo día a cualquier "
        "hora hasta las 23:59, sin hora de corte (Ley N° 31465 (2022), que modifica la Ley "
        "N° 27444; Indecopi, Res. 0518-2024/SEL-INDECOPI).",
        "Se tiene por recibido el 2026-11-23 (lunes).",
        RULE_COUNTING,
        "El plazo de 15 días hábiles se computa desde el 2026-11-24 (martes).",
        "No se cuentan sábados ni domingos (6 en el plazo).",
        "No se cuenta el 2026-12-08 (martes): feriado: Inmaculada Concepción.",
        "No se cuenta el 2026-12-09 (miércoles): feriado: Batalla de Ayacucho.",
        "Vence el 2026-12-16 (miércoles).",
    ]


def test_explain_due_with_a_configured_cutoff_in_utc() -> None:
    cal = Calendario(cutoff=dt.time(17, 0), cutoff_source="Resolución de prueba N° 1")
    lines = cal.explain_due(T(2026, 11, 23, 23, 30, tzinfo=UTC), 15)
    assert lines[0] == (
        "Recibido el 2026-11-23 (lunes) a las 18:30 hora de America/Lima "
        "(2026-11-23T23:30:00+00:00)."
    )
    assert lines[1].startswith("Hora de corte de las 17:00 (recibido después de esa hora)")
    assert lines[1].endswith("(Resolución de prueba N° 1).")
    assert lines[2] == (
        "Se tiene por recibido el siguiente día hábil, 2026-11-24 (martes): "
        "recibido a partir de la hora de corte (17:00)."
    )
    assert lines[-1] == "Vence el 2026-12-17 (jueves)."


def test_explain_due_non_working_day_and_extra_day() -> None:
    lines = CAL_EXTRA.explain_due(T(2026, 11, 21, 9, 0), 15)
    assert lines[1] == "Calendario de la unidad receptora: Sede central (Lima), región Lima."
    assert lines[2] == (
        "Presentación en día inhábil: se tiene por presentada el siguiente día hábil y el plazo "
        "corre desde el día hábil siguiente a este (regla de gob.pe para mesas de partes "
        "virtuales; TUO de la Ley N° 27444 (D.S. N° 004-2019-JUS), arts. 144 y 145)."
    )
    assert lines[3] == (
        "Se tiene por recibido el siguiente día hábil, 2026-11-23 (lunes): "
        "el 2026-11-21 no es día hábil (sábado)."
    )
    assert "No se cuenta el 2026-12-11 (viernes): día no laborable (config)." in lines
    assert lines[-1] == "Vence el 2026-12-17 (jueves)."


def test_explain_due_on_a_holiday_evening() -> None:
    lines = CAL.explain_due(T(2026, 12, 8, 18, 0), 5)  # a holiday, in the evening
    assert lines[2] == (
        "Se tiene por recibido el siguiente día hábil, 2026-12-10 (jueves): "
        "el 2026-12-08 no es día hábil (feriado: Inmaculada Concepción)."
    )
    assert "No se cuenta el 2026-12-25 (viernes): feriado: Navidad del Señor." not in lines
    assert lines[-1] == "Vence el 2026-12-17 (jueves)."


def test_explain_due_zero_days() -> None:
    assert CAL.explain_due(T(2026, 11, 23, 10), 0)[-1] == (
        "Plazo de 0 días hábiles: vence el mismo día de recepción, 2026-11-23 (lunes)."
    )


def test_bad_settings_give_clear_errors() -> None:
    with pytest.raises(ConfigError, match="'XX'"):
        Calendario(country="XX")
    with pytest.raises(ConfigError, match="Marte/Base"):
        Calendario(timezone="Marte/Base")


# -- properties against a naive day-by-day reference ------------------------------------

_HOLIDAYS: dict[D, str] = {}
for _year in range(2022, 2033):  # wide enough for ±300 business days around 2025-2029
    _HOLIDAYS.update(holidays.country_holidays("PE", language="es", years=_year))


def _naive_business(d: D) -> bool:
    return d.weekday() < 5 and d not in _HOLIDAYS


def _naive_add(d: D, n: int) -> D:
    step = dt.timedelta(days=1 if n > 0 else -1)
    left = abs(n)
    while left:
        d += step
        if _naive_business(d):
            left -= 1
    return d


days_st = st.dates(min_value=D(2025, 1, 1), max_value=D(2029, 12, 31))


@settings(max_examples=300, deadline=None)
@given(start=days_st, n=st.integers(min_value=-300, max_value=300))
def test_add_business_days_matches_naive_reference(start: D, n: int) -> None:
    end = CAL.add_business_days(start, n)
    assert end == _naive_add(start, n)
    if n >= 0:
        assert CAL.business_days_between(start, end) == n


@settings(max_examples=300, deadline=None)
@given(a=days_st, b=days_st)
def test_business_days_between_matches_naive_reference(a: D, b: D) -> None:
    lo, hi = min(a, b), max(a, b)
    count = sum(_naive_business(lo + dt.timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
    assert CAL.business_days_between(a, b) == (count if b >= a else -count)
    assert CAL.is_business_day(a) is _naive_business(a)
