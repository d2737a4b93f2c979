"""The legal calendar of every office: which office receives a mailbox, and its calendar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailflow.clock.calendar_rules import EMPTY, CalendarRules
from mailflow.clock.dias_habiles import Calendario
from mailflow.errors import ConfigError

if TYPE_CHECKING:
    from mailflow.config import CalendarSettings, Settings


class Calendarios:
    """The legal calendar of every office: config plus rules/calendar.yaml, built once.

    `mailbox_offices` maps a mailbox name to its office id (config `mailboxes[].office`); any
    other mailbox, and a case without office, use `default_office` (Lima).
    """

    def __init__(
        self,
        settings: CalendarSettings,
        rules: CalendarRules | None = None,
        mailbox_offices: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules or EMPTY
        self.mailbox_offices = dict(mailbox_offices or {})
        self.default_office = settings.default_office
        if self.default_office not in self.rules.offices:
            raise ConfigError(
                f"calendar.default_office: oficina {self.default_office!r} no definida en "
                f"{self.rules.path or 'rules/calendar.yaml'} (definidas: "
                f"{', '.join(self.rules.offices)})"
            )
        for mailbox, office in self.mailbox_offices.items():
            if office not in self.rules.offices:
                raise ConfigError(
                    f"mailboxes[{mailbox}].office: oficina {office!r} no definida en "
                    f"{self.rules.path or 'rules/calendar.yaml'}"
                )
        self._by_office: dict[str, Calendario] = {}

    @classmethod
    def from_settings(cls, settings: Settings, rules: CalendarRules | None = None) -> Calendarios:
        """From the whole settings: the calendar section and each mailbox's office."""
        offices = {m.name: m.office for m in settings.mailboxes if m.office}
        return cls(settings.calendar, rules, offices)

    @property
    def default(self) -> Calendario:
        """The default office's calendar (the one `App.calendario` returns)."""
        return self.for_office(self.default_office)

    def office_of_mailbox(self, mailbox: str | None) -> str:
        """The office id of a receiving mailbox (by name); the default office otherwise."""
        return self.mailbox_offices.get(mailbox or "", self.default_office)

    def for_office(self, office: str | None) -> Calendario:
        """The calendar of `office` (None or unknown: the default office)."""
        oid = office if office in self.rules.offices else self.default_office
        cal = self._by_office.get(oid)
        if cal is None:
            cal = self._by_office[oid] = Calendario.from_settings(self.settings, self.rules, oid)
        return cal


def default_calendar(settings: Settings) -> Calendario:
    """The default office's calendar straight from settings and rules/calendar.yaml (for code
    that has settings but no App, e.g. the dashboard). Raises DefinitionError/ConfigError."""
    from mailflow.clock.calendar_rules import CALENDAR_FILE, load_calendar_rules

    rules = load_calendar_rules(settings.rules_dir / CALENDAR_FILE)
    return Calendarios.from_settings(settings, rules).default
