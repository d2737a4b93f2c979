"""Business-day calendar (días hábiles): receipt day, due dates and their explanation.

Sources of the rules applied here: TUO de la Ley N° 27444 (D.S. N° 004-2019-JUS), arts. 144 and
145 (a term in days counts business days from the day after; weekends, holidays and días no
laborables are excluded); Ley N° 31465 (2022) and Indecopi Res. 0518-2024/SEL-INDECOPI (a digital
filing on a business day up to 23:59 counts that day: no office-hours cutoff).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from mailflow.clock.calendar_rules import EMPTY, CalendarRules, Entry, Office
from mailflow.errors import ConfigError

if TYPE_CHECKING:
    from mailflow.config import CalendarSettings

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MESES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip
EXTRA_REASON = "día no laborable (config)"
NEXT_BUSINESS_DAY = "next_business_day"
TERM_FROM_NEXT_BUSINESS_DAY = "term_from_next_business_day"
DEFAULT_CUTOFF_SOURCE = "régimen especial de la institución (calendar.cutoff en config.yaml)"
SOURCE_NO_CUTOFF = (
    "Ley N° 31465 (2022), que modifica la Ley N° 27444; Indecopi, Res. 0518-2024/SEL-INDECOPI"
)
SOURCE_COUNTING = "TUO de la Ley N° 27444 (D.S. N° 004-2019-JUS), arts. 144 y 145"
SOURCE_NON_BUSINESS = "regla de gob.pe para mesas de partes virtuales; " + SOURCE_COUNTING
RULE_COUNTING = (
    "Cómputo: días hábiles consecutivos desde el día hábil siguiente a la recepción; no se "
    "cuentan sábados, domingos, feriados nacionales y regionales, días no laborables del sector "
    f"público ni períodos de suspensión de plazos ({SOURCE_COUNTING})."
)


@dataclass(frozen=True)
class _Year:
    """One calendar year: why each non-working weekday is non-working, and its business days."""

    reasons: dict[dt.date, str]  # non-working weekdays: receipt moves, the term skips them
    suspended: dict[dt.date, str]  # working days whose terms are suspended: the term skips them
    business: tuple[int, ...]  # ordinals of the countable business days, ascending


def _fmt(d: dt.date) -> str:
    return f"{d.isoformat()} ({WEEKDAYS[d.weekday()]})"


def fecha_en_letras(d: dt.date) -> str:
    """ "viernes 27 de noviembre de 2026": a date as the acknowledgment states it."""
    return f"{WEEKDAYS[d.weekday()]} {d.day} de {MESES[d.month - 1]} de {d.year}"


class Calendario:
    """Peruvian business-day calendar of one office.

    No cutoff by default (a filing up to 23:59 of a business day counts that day); `cutoff`
    restores one for an institution under a special regime (`cutoff_source` names its basis).
    `entries` are the dated, sourced días no laborables, regional holidays and suspensions of
    rules/calendar.yaml that apply to `office`. Holidays are cached per year.
    """

    def __init__(
        self,
        country: str = "PE",
        timezone: str = "America/Lima",
        cutoff: dt.time | None = None,
        extra_non_working_days: Iterable[dt.date] = (),
        *,
        entries: Iterable[Entry] = (),
        office: Office | None = None,
        non_business_day_filing: str = NEXT_BUSINESS_DAY,
        cutoff_source: str = DEFAULT_CUTOFF_SOURCE,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"calendar.timezone: zona horaria desconocida: {timezone!r}") from exc
        try:
            holidays.country_holidays(country, years=())
        except NotImplementedError as exc:
            raise ConfigError(
                f"calendar.country: país sin calendario de feriados: {country!r}"
            ) from exc
        if non_business_day_filing not in (NEXT_BUSINESS_DAY, TERM_FROM_NEXT_BUSINESS_DAY):
            raise ConfigError(
                "calendar.non_business_day_filing: use next_business_day o "
                f"term_from_next_business_day, no {non_business_day_filing!r}"
            )
        self.country = country
        self.timezone = timezone
        self.cutoff = cutoff.replace(tzinfo=None) if cutoff is not None else None
        self.cutoff_source = cutoff_source or DEFAULT_CUTOFF_SOURCE
        self.non_business_day_filing = non_business_day_filing
        self.extra_non_working_days = frozenset(extra_non_working_days)
        self.entries = tuple(entries)
        self.office = office
        self._years: dict[int, _Year] = {}

    @classmethod
    def from_settings(
        cls, s: CalendarSettings, rules: CalendarRules | None = None, office: str | None = None
    ) -> Calendario:
        """The calendar of `office` (default: `s.default_office`) from config and the rules."""
        rules = rules or EMPTY
        oid = office or s.default_office
        return cls(
            s.country,
            s.timezone,
            s.cutoff,
            s.extra_non_working_days,
            entries=rules.for_office(oid),
            office=rules.offices.get(oid),
            non_business_day_filing=s.non_business_day_filing,
            cutoff_source=s.cutoff_source,
        )

    # -- per-year cache -------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            cached = self._years[year] = self._build_year(year)
        return cached

    def _build_year(self, year: int) -> _Year:
        reasons: dict[dt.date, str] = {}
        suspended: dict[dt.date, str] = {}
        for day in sorted(self.extra_non_working_days):
            if day.year == year:
                reasons[day] = EXTRA_REASON
        for entry in self.entries:
            if entry.start.year > year or entry.end.year < year:
                continue
            target = suspended if entry.kind == "suspension" else reasons
            for day in entry.days():
                if day.year == year:
                    target.setdefault(day, entry.label)
        official = holidays.country_holidays(self.country, language="es", years=year)
        for day, name in official.items():
            reasons[day] = f"feriado: {name}"
        first = dt.date(year, 1, 1).toordinal()
        last = dt.date(year, 12, 31).toordinal()
        business = tuple(
            o
            for o in range(first, last + 1)
            if (o - 1) % 7 < 5  # ordinal 1 is a Monday
            and dt.date.fromordinal(o) not in reasons
            and dt.date.fromordinal(o) not in suspended
        )
        return _Year(reasons, suspended, business)

    # -- days -----------------------------------------------------------------------------

    def is_business_day(self, d: dt.date) -> bool:
        """Whether the office works on `d` (a day inside a suspension of terms is one: filings
        are received, but the day is not counted in any term)."""
        return d.weekday() < 5 and d not in self._year(d.year).reasons

    def non_working_reason(self, d: dt.date) -> str | None:
        """Why `d` is not counted in a term (Spanish, with its source), or None when it is."""
        if d.weekday() >= 5:
            return WEEKDAYS[d.weekday()]
        year = self._year(d.year)
        return year.reasons.get(d) or year.suspended.get(d)

    def next_working_day(self, d: dt.date) -> dt.date:
        """The first day strictly after `d` on which the office works (receipt, not counting)."""
        day = d + dt.timedelta(days=1)
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day

    def next_business_day(self, d: dt.date) -> dt.date:
        """The first business day strictly after `d`."""
        return self.add_business_days(d, 1)

    def add_business_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th business day after `start` (before it when n < 0); n == 0 returns `start`."""
        if n == 0:
            return start
        year = start.year
        days = self._year(year).business
        if n > 0:
            i = bisect_right(days, start.toordinal())  # first business day after start
            while i + n > len(days):
                n -= len(days) - i
                year += 1
                days, i = self._year(year).business, 0
            return dt.date.fromordinal(days[i + n - 1])
        k = -n
        i = bisect_left(days, start.toordinal()) - 1  # last business day before start
        while i - k + 1 < 0:
            k -= i + 1
            year -= 1
            days = self._year(year).business
            i = len(days) - 1
        return dt.date.fromordinal(days[i - k + 1])

    def business_days_between(self, a: dt.date, b: dt.date) -> int:
        """Business days in the interval (a, b]; when b < a, minus those in (b, a].

        So ``business_days_between(a, add_business_days(a, n)) == n`` for any n >= 0,
        and the result is 0 when no business day separates the two dates.
        """
        if b < a:
            return -self.business_days_between(b, a)
        count = 0
        for year in range(a.year, b.year + 1):
            days = self._year(year).business
            count += bisect_right(days, b.toordinal()) - bisect_right(days, a.toordinal())
        return count

    # -- receipt and terms ----------------------------------------------------------------

    def local(self, moment: dt.datetime) -> dt.datetime:
        """`moment` in office local time (naive datetimes are already local)."""
        return moment if moment.tzinfo is None else moment.astimezone(self.tz)

    def after_cutoff(self, moment: dt.datetime) -> bool:
        """Whether `moment` is at or after the configured cutoff (never, without one)."""
        return self.cutoff is not None and self.local(moment).time() >= self.cutoff

    def legal_receipt_day(self, received: dt.datetime) -> dt.date:
        """The day a request counts as received: its own day when that is a business day (up
        to 23:59, Ley N° 31465), else the next business day; with a configured cutoff, also the
        next business day when it came in at or after the cutoff."""
        local = self.local(received)
        day = local.date()
        if self.after_cutoff(received) or not self.is_business_day(day):
            return self.next_working_day(day)
        return day

    def term_anchor(self, received: dt.datetime) -> dt.date:
        """The day after which a term's días hábiles are counted.

        The legal receipt day, except with `non_business_day_filing:
        term_from_next_business_day`, where a filing moved to the next business day has that
        day as the term's first day (so the anchor is the calendar day before it).
        """
        receipt = self.legal_receipt_day(received)
        moved = receipt != self.local(received).date()
        if moved and self.non_business_day_filing == TERM_FROM_NEXT_BUSINESS_DAY:
            return receipt - dt.timedelta(days=1)
        return receipt

    def due_date(self, received: dt.datetime, days: int) -> dt.date:
        """Last day of a term of `days` días hábiles counted from the day after legal receipt
        (see `term_anchor`); 0 days: the legal receipt day. Raises ValueError when days < 0."""
        if days < 0:
            raise ValueError(f"el plazo no puede ser negativo: {days} días hábiles")
        if days == 0:
            return self.legal_receipt_day(received)
        return self.add_business_days(self.term_anchor(received), days)

    def receipt_rule(self, received: dt.datetime) -> str:
        """The receipt rule applied to `received`, in Spanish, with its legal source."""
        local = self.local(received)
        if not self.is_business_day(local.date()):
            if self.non_business_day_filing == TERM_FROM_NEXT_BUSINESS_DAY:
                return (
                    "Presentación en día inhábil: se tiene por presentada el siguiente día "
                    "hábil, que es el primer día del plazo (calendar.non_business_day_filing; "
                    f"{SOURCE_COUNTING})."
                )
            return (
                "Presentación en día inhábil: se tiene por presentada el siguiente día hábil y "
                f"el plazo corre desde el día hábil siguiente a este ({SOURCE_NON_BUSINESS})."
            )
        if self.cutoff is not None:
            side = "después de" if self.after_cutoff(received) else "antes de"
            return (
                f"Hora de corte de las {self.cutoff:%H:%M} (recibido {side} esa hora): lo "
                "recibido desde esa hora en día hábil se tiene por presentado el siguiente día "
                f"hábil ({self.cutoff_source})."
            )
        return (
            "Presentación digital en día hábil: se tiene por presentada ese mismo día a "
            f"cualquier hora hasta las 23:59, sin hora de corte ({SOURCE_NO_CUTOFF})."
        )

    def rule_summary(self) -> str:
        """One Spanish sentence: the receipt rule in force and its source (for the case page)."""
        if self.cutoff is not None:
            return (
                f"Hora de corte {self.cutoff:%H:%M}: lo recibido desde esa hora se tiene por "
                f"presentado el siguiente día hábil ({self.cutoff_source})."
            )
        return (
            "Sin hora de corte: lo presentado en día hábil hasta las 23:59 cuenta ese día "
            f"({SOURCE_NO_CUTOFF}); lo presentado en día inhábil, el siguiente día hábil."
        )

    def is_extemporaneo(
        self, fecha_notificacion: dt.date, filed: dt.datetime, limit_days: int = 15
    ) -> bool:
        """True when `filed` (counted as its legal receipt day) is after the last day of the
        `limit_days` días hábiles that follow the notification date."""
        limit = self.add_business_days(fecha_notificacion, limit_days)
        return self.legal_receipt_day(filed) > limit

    def explain_due(self, received: dt.datetime, days: int) -> list[str]:
        """Spanish, step-by-step account of how the due date was computed, naming each rule
        applied and its legal source (for `calendar due --explain`, the case page, the audit)."""
        local = self.local(received)
        lines = [
            f"Recibido el {_fmt(local.date())} a las {local:%H:%M} hora de {self.timezone}"
            + self._original_time(received, local)
            + "."
        ]
        if self.office is not None:
            lines.append(
                f"Calendario de la unidad receptora: {self.office.name}, "
                f"región {self.office.region}."
            )
        lines.append(self.receipt_rule(received))
        receipt = self.legal_receipt_day(received)
        if receipt != local.date():
            reason = self.non_working_reason(local.date())
            if reason is not None and not self.is_business_day(local.date()):
                why = f"el {local.date().isoformat()} no es día hábil ({reason})"
            else:
                why = f"recibido a partir de la hora de corte ({self.cutoff:%H:%M})"
            lines.append(f"Se tiene por recibido el siguiente día hábil, {_fmt(receipt)}: {why}.")
        else:
            lines.append(f"Se tiene por recibido el {_fmt(receipt)}.")
        due = self.due_date(received, days)
        if days == 0:
            lines.append(f"Plazo de 0 días hábiles: vence el mismo día de recepción, {_fmt(due)}.")
            return lines
        anchor = self.term_anchor(received)
        start = self.add_business_days(anchor, 1)
        lines.append(RULE_COUNTING)
        lines.append(f"El plazo de {_plural(days)} se computa desde el {_fmt(start)}.")
        lines.extend(self._skipped(anchor, due))
        lines.append(f"Vence el {_fmt(due)}.")
        return lines

    def _original_time(self, received: dt.datetime, local: dt.datetime) -> str:
        offset = received.utcoffset()
        if offset is None or offset == local.utcoffset():
            return ""
        return f" ({received.isoformat()})"

    def _skipped(self, anchor: dt.date, due: dt.date) -> list[str]:
        """Non-counted weekdays in (anchor, due), consecutive days of one reason grouped."""
        weekend = 0
        lines: list[str] = []
        run: list[dt.date] = []
        run_reason: str | None = None

        def flush() -> None:
            if run and run_reason is not None:
                if len(run) == 1:
                    lines.append(f"No se cuenta el {_fmt(run[0])}: {run_reason}.")
                else:
                    lines.append(
                        f"No se cuentan del {_fmt(run[0])} al {_fmt(run[-1])}: {run_reason}."
                    )

        day = anchor + dt.timedelta(days=1)
        while day < due:
            reason = self.non_working_reason(day)
            if reason in ("sábado", "domingo"):
                weekend += 1
            elif reason is not None and reason == run_reason:
                run.append(day)
            else:
                flush()
                run, run_reason = ([day], reason) if reason is not None else ([], None)
            day += dt.timedelta(days=1)
        flush()
        if weekend:
            lines.insert(0, f"No se cuentan sábados ni domingos ({weekend} en el plazo).")
        return lines


def _plural(days: int) -> str:
    return "1 día hábil" if abs(days) == 1 else f"{days} días hábiles"
