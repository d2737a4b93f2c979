"""The legal calendar as dated, sourced policy: offices, días no laborables, regional holidays and
suspensions of administrative terms, read from rules/calendar.yaml and validated (`file:line`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailflow.yamlsource import YamlSource, load_yaml, parse_yaml

CALENDAR_FILE = "calendar.yaml"
Scope = Literal["national", "region", "office"]
Kind = Literal["no_laborable", "feriado_regional", "suspension"]
SCOPES: tuple[Scope, ...] = ("national", "region", "office")
SECTIONS: dict[str, Kind] = {
    "dias_no_laborables": "no_laborable",
    "feriados_regionales": "feriado_regional",
    "suspensiones": "suspension",
}
KIND_LABELS: dict[Kind, str] = {
    "no_laborable": "día no laborable",
    "feriado_regional": "feriado regional",
    "suspension": "suspensión de plazos",
}
_ENTRY_KEYS = {"date", "start", "end", "name", "scope", "region", "office", "source"}


@dataclass(frozen=True)
class Office:
    """A receiving unit of the institution; its legal calendar includes its region's days."""

    id: str
    name: str
    region: str


@dataclass(frozen=True)
class Entry:
    """One dated, sourced calendar entry: a day (start == end) or a period (suspension).

    `scope` is "national" (every office), "region" (offices whose `region` is `target`) or
    "office" (the office whose id is `target`). `where` is `file:line` of the entry.
    """

    kind: Kind
    start: dt.date
    end: dt.date
    name: str
    scope: Scope
    target: str | None
    source: str
    where: str = field(default="", compare=False)

    def applies_to(self, office: Office | None) -> bool:
        """Whether this entry is part of `office`'s calendar (None: national entries only)."""
        if self.scope == "national":
            return True
        if office is None:
            return False
        if self.scope == "region":
            return _norm(self.target or "") == _norm(office.region)
        return self.target == office.id

    def days(self) -> Iterable[dt.date]:
        """Every calendar day from `start` to `end`, both included."""
        day = self.start
        while day <= self.end:
            yield day
            day += dt.timedelta(days=1)

    @property
    def label(self) -> str:
        """Spanish: "día no laborable: Navidad (D.S. N° 0xx-2026-PCM)"."""
        return f"{KIND_LABELS[self.kind]}: {self.name} ({self.source})"


@dataclass(frozen=True)
class CalendarRules:
    """The whole file: offices by id and the dated entries, in file order."""

    offices: dict[str, Office]
    entries: tuple[Entry, ...] = ()
    path: Path | None = None

    def for_office(self, office_id: str | None) -> tuple[Entry, ...]:
        """The entries that apply to the office (unknown or None: national entries only)."""
        office = self.offices.get(office_id or "")
        return tuple(e for e in self.entries if e.applies_to(office))


DEFAULT_OFFICE = Office("lima", "Sede central (Lima)", "Lima")
EMPTY = CalendarRules({DEFAULT_OFFICE.id: DEFAULT_OFFICE})


def load_calendar_rules(path: Path) -> CalendarRules:
    """Read rules/calendar.yaml; a missing file is the empty calendar with the Lima office.

    Raises `DefinitionError` (`file:line: message`) on any invalid entry.
    """
    if not path.exists():
        return CalendarRules(dict(EMPTY.offices), (), path)
    return _build(load_yaml(path))


def parse_calendar_rules(text: str, path: Path) -> CalendarRules:
    """Like `load_calendar_rules` for text already read (tests, `policy check`)."""
    return _build(parse_yaml(text, path))


def _build(src: YamlSource) -> CalendarRules:
    data = src.data if src.data is not None else {}
    if not isinstance(data, dict):
        raise src.error("el calendario debe ser un mapa con offices, dias_no_laborables, …")
    for key in data:
        if key != "offices" and key not in SECTIONS:
            allowed = ", ".join(["offices", *SECTIONS])
            raise src.error(f"sección desconocida {key!r} (use {allowed})", key)
    offices = _offices(src, data.get("offices"))
    entries: list[Entry] = []
    seen: dict[tuple[Kind, dt.date, dt.date, Scope, str | None], str] = {}
    for section, kind in SECTIONS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise src.error(f"{section} debe ser una lista de entradas", section)
        for i, item in enumerate(items):
            entry = _entry(src, section, i, item, kind, offices)
            key = (entry.kind, entry.start, entry.end, entry.scope, entry.target)
            if key in seen:
                raise src.error(f"entrada repetida (ya definida en {seen[key]})", section, i)
            seen[key] = entry.where
            entries.append(entry)
    return CalendarRules(offices, tuple(entries), src.path)


def _offices(src: YamlSource, raw: Any) -> dict[str, Office]:
    if raw is None:
        return dict(EMPTY.offices)
    if not isinstance(raw, dict) or not raw:
        raise src.error("offices debe ser un mapa: id de oficina → {name, region}", "offices")
    offices: dict[str, Office] = {}
    for oid, spec in raw.items():
        if not isinstance(spec, dict):
            raise src.error(f"oficina {oid!r}: debe tener name y region", "offices", oid)
        extra = set(spec) - {"name", "region"}
        if extra:
            raise src.error(
                f"oficina {oid!r}: clave desconocida {sorted(extra)[0]!r}", "offices", oid
            )
        name, region = spec.get("name"), spec.get("region")
        if not isinstance(name, str) or not name.strip():
            raise src.error(f"oficina {oid!r}: falta name", "offices", oid)
        if not isinstance(region, str) or not region.strip():
            raise src.error(f"oficina {oid!r}: falta region (departamento)", "offices", oid)
        offices[str(oid)] = Office(str(oid), name.strip(), region.strip())
    return offices


def _date(src: YamlSource, value: Any, *keys: str | int) -> dt.date:
    if isinstance(value, dt.datetime):
        raise src.error("indique solo la fecha (AAAA-MM-DD), sin hora", *keys)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise src.error(f"fecha inválida {value!r} (use AAAA-MM-DD)", *keys)


def _entry(
    src: YamlSource, section: str, i: int, item: Any, kind: Kind, offices: dict[str, Office]
) -> Entry:
    at: tuple[str | int, ...] = (section, i)
    if not isinstance(item, dict):
        raise src.error("cada entrada es un mapa (date, name, scope, source)", *at)
    for key in item:
        if key not in _ENTRY_KEYS:
            raise src.error(f"clave desconocida {key!r}", *at, key)
    if kind == "suspension":
        for key in ("start", "end"):
            if key not in item:
                raise src.error(f"una suspensión necesita {key} (AAAA-MM-DD)", *at)
        start = _date(src, item["start"], *at, "start")
        end = _date(src, item["end"], *at, "end")
        if end < start:
            raise src.error(f"end ({end}) es anterior a start ({start})", *at, "end")
    else:
        if "date" not in item:
            raise src.error("falta date (AAAA-MM-DD)", *at)
        start = end = _date(src, item["date"], *at, "date")
    source = item.get("source")
    if not isinstance(source, str) or not source.strip():
        raise src.error(
            'falta source: la norma que lo declara (p. ej. "D.S. N° 0xx-2026-PCM")', *at
        )
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise src.error("falta name (descripción del día o período)", *at)
    scope = item.get("scope", "national")
    if scope not in SCOPES:
        raise src.error(f"scope {scope!r} no válido (use national, region u office)", *at, "scope")
    if kind == "feriado_regional" and scope == "national":
        raise src.error("un feriado regional necesita scope region u office", *at, "scope")
    target: str | None = None
    if scope == "region":
        target = item.get("region")
        regions = {_norm(o.region) for o in offices.values()}
        if not isinstance(target, str) or not target.strip():
            raise src.error("scope region necesita region (departamento)", *at)
        if _norm(target) not in regions:
            known = ", ".join(sorted({o.region for o in offices.values()}))
            raise src.error(
                f"la región {target!r} no es la de ninguna oficina (oficinas en: {known})",
                *at,
                "region",
            )
    elif scope == "office":
        target = item.get("office")
        if target not in offices:
            raise src.error(
                f"oficina {target!r} desconocida (definidas: {', '.join(offices)})", *at, "office"
            )
    for key in ("region", "office"):
        if key in item and (scope != key):
            raise src.error(f"{key} solo se usa con scope {key}", *at, key)
    return Entry(kind, start, end, name.strip(), scope, target, source.strip(), src.where(*at))


def _norm(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
