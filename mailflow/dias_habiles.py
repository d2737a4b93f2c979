"""Business-day calendar (días hábiles): receipt day, due dates and their explanation."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from mailflow.config import CalendarSettings
from mailflow.errors import ConfigError

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
EXTRA_REASON = "día no laborable (config)"


@dataclass(frozen=True)
class _Year:
    """One calendar year: why each non-working weekday is non-working, and its business days."""

    reasons: dict[dt.date, str]
    business: tuple[int, ...]  # ordinals of the business days, ascending


def _fmt(d: dt.date) -> str:
    return f"{d.isoformat()} ({WEEKDAYS[d.weekday()]})"


class Calendario:
    """Peruvian business-day calendar with an office cutoff; holidays are cached per year."""

    def __init__(
        self,
        country: str = "PE",
        timezone: str = "America/Lima",
        cutoff: dt.time = dt.time(17, 0),
        extra_non_working_days: Iterable[dt.date] = (),
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
        self.country = country
        self.timezone = timezone
        self.cutoff = cutoff.replace(tzinfo=None)
        self.extra_non_working_days = frozenset(extra_non_working_days)
        self._years: dict[int, _Year] = {}

    @classmethod
    def from_settings(cls, s: CalendarSettings) -> Calendario:
        return cls(s.country, s.timezone, s.cutoff, s.extra_non_working_days)

    # -- per-year cache -------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            cached = self._years[year] = self._build_year(year)
        return cached

    def _build_year(self, year: int) -> _Year:
        reasons: dict[dt.date, str] = {}
        for day in sorted(self.extra_non_working_days):
            if day.year == year:
                reasons[day] = EXTRA_REASON
        official = holidays.country_holidays(self.country, language="es", years=year)
        for day, name in official.items():
            reasons[day] = f"feriado: {name}"
        first = dt.date(year, 1, 1).toordinal()
        last = dt.date(year, 12, 31).toordinal()
        business = tuple(
            o
            for o in range(first, last + 1)
            if (o - 1) % 7 < 5 and dt.date.fromordinal(o) not in reasons  # ordinal 1 is a Monday
        )
        return _Year(reasons, business)

    # -- days -----------------------------------------------------------------------------

    def is_business_day(self, d: dt.date) -> bool:
        return d.weekday() < 5 and d not in self._year(d.year).reasons

    def non_working_reason(self, d: dt.date) -> str | None:
        """Why `d` is not a business day (Spanish), or None when it is one."""
        if d.weekday() >= 5:
            return WEEKDAYS[d.weekday()]
        return self._year(d.year).reasons.get(d)

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
        return self.local(moment).time() >= self.cutoff

    def legal_receipt_day(self, received: dt.datetime) -> dt.date:
        """The day a request counts as received: the next business day if it came in on a
        non-business day or at/after the cutoff."""
        local = self.local(received)
        day = local.date()
        if local.time() >= self.cutoff or not self.is_business_day(day):
            return self.next_business_day(day)
        return day

    def due_date(self, received: dt.datetime, days: int) -> dt.date:
        """Last day of a term of `days` días hábiles counted from the day after legal receipt."""
        if days < 0:
            raise ValueError(f"el plazo no puede ser negativo: {days} días hábiles")
        return self.add_business_days(self.legal_receipt_day(received), days)

    def is_extemporaneo(
        self, fecha_notificacion: dt.date, filed: dt.datetime, limit_days: int = 15
    ) -> bool:
        """True when `filed` (counted as its legal receipt day) is after the last day of the
        `limit_days` días hábiles that follow the notification date."""
        limit = self.add_business_days(fecha_notificacion, limit_days)
        return self.legal_receipt_day(filed) > limit

    def explain_due(self, received: dt.datetime, days: int) -> list[str]:
        """Spanish, step-by-step account of how the due date was computed (for the audit)."""
        local = self.local(received)
        lines = [
            f"Recibido el {_fmt(local.date())} a las {local:%H:%M} hora de {self.timezone}"
            + self._original_time(received, local)
            + "."
        ]
        receipt = self.legal_receipt_day(received)
        if receipt != local.date():
            reason = self.non_working_reason(local.date())
            if reason is not None:
                why = f"el {local.date().isoformat()} no es día hábil ({reason})"
            else:
                why = f"recibido a partir de la hora de corte ({self.cutoff:%H:%M})"
            lines.append(f"Se tiene por recibido el siguiente día hábil, {_fmt(receipt)}: {why}.")
        due = self.due_date(received, days)
        if days == 0:
            lines.append(f"Plazo de 0 días hábiles: vence el mismo día de recepción, {_fmt(due)}.")
            return lines
        start = self.next_business_day(receipt)
        lines.append(f"El plazo de {_plural(days)} se computa desde el {_fmt(start)}.")
        lines.extend(self._skipped(receipt, due))
        lines.append(f"Vence el {_fmt(due)}.")
        return lines

    def _original_time(self, received: dt.datetime, local: dt.datetime) -> str:
        offset = received.utcoffset()
        if offset is None or offset == local.utcoffset():
            return ""
        return f" ({received.isoformat()})"

    def _skipped(self, receipt: dt.date, due: dt.date) -> list[str]:
        weekend = 0
        lines: list[str] = []
        day = receipt + dt.timedelta(days=1)
        while day < due:
            reason = self.non_working_reason(day)
            if reason in ("sábado", "domingo"):
                weekend += 1
            elif reason is not None:
                lines.append(f"No se cuenta el {_fmt(day)}: {reason}.")
            day += dt.timedelta(days=1)
        if weekend:
            lines.insert(0, f"No se cuentan sábados ni domingos ({weekend} en el plazo).")
        return lines


def _plural(days: int) -> str:
    return "1 día hábil" if abs(days) == 1 else f"{days} días hábiles"
