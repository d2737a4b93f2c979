"""`mailflow registry import FILE`: the web page's spreadsheet import, as a command."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mailflow.registry import applicants as registry
from mailflow.registry.status import STATUS_LABELS, status_code
from mailflow.store.db import Database
from mailflow.textnorm import fold


@dataclass(frozen=True)
class CommandResult:
    """What the command prints and its exit code (0 imported, 1 nothing valid, 2 unusable)."""

    lines: tuple[str, ...]
    code: int


def _column(headers: Sequence[str], name: str) -> int:
    """A column by header (accents and case ignored), by 1-based number, or by letter (A, B…)."""
    folded = [fold(h) for h in headers]
    if fold(name) in folded:
        return folded.index(fold(name))
    if name.isdigit() and 1 <= int(name) <= len(headers):
        return int(name) - 1
    if name.isalpha() and len(name) == 1 and ord(name.upper()) - 65 < len(headers):
        return ord(name.upper()) - 65
    known = ", ".join(f"«{h}»" for h in headers)
    raise registry.RegistryError(f"--map: no hay una columna «{name}» (columnas: {known})")


def _target(name: str) -> str:
    """An applicant attribute by its key (full_name) or its Spanish label (Correo registrado)."""
    if name in registry.TARGETS:
        return name
    for attr, label in registry.TARGET_LABELS.items():
        if fold(label) == fold(name):
            return attr
    known = ", ".join(registry.TARGETS)
    raise registry.RegistryError(f"--map: campo desconocido «{name}» (se admiten: {known})")


def mapping_for(headers: Sequence[str], options: Sequence[str]) -> dict[int, str]:
    """The suggested mapping (as on the web page) with each `COLUMN=FIELD` option applied;
    `COLUMN=` (empty field) leaves that column out. Raises RegistryError on a bad option."""
    mapping = registry.suggest_mapping(list(headers))
    for option in options:
        column, sep, field = option.partition("=")
        if not sep or not column.strip():
            raise registry.RegistryError(f"--map: se esperaba COLUMNA=CAMPO, no «{option}»")
        index = _column(headers, column.strip())
        if not field.strip():
            mapping.pop(index, None)
            continue
        attr = _target(field.strip())
        mapping = {i: a for i, a in mapping.items() if a != attr and i != index}
        mapping[index] = attr
    return dict(sorted(mapping.items()))


def import_file(
    db: Database, path: Path, options: Sequence[str] = (), *, dry_run: bool = False
) -> CommandResult:
    """Read, map, validate and (unless dry_run) upsert `path`; report like the web page."""
    try:
        sheet = registry.read_sheet(path.read_bytes(), path.name)
        mapping = mapping_for(sheet.headers, options)
        plan = registry.plan_import(sheet, mapping)
    except OSError as exc:
        return CommandResult((f"{path}: no se puede leer: {exc}",), 2)
    except registry.RegistryError as exc:
        return CommandResult((str(exc),), 2)
    lines = [f"Archivo: {path.name} ({len(sheet.rows)} filas)", "Columnas:"]
    for i, header in enumerate(sheet.headers):
        attr = mapping.get(i)
        lines.append(
            f"  {header or '(sin título)'} → {registry.TARGET_LABELS[attr] if attr else '—'}"
        )
    statuses = Counter(status_code(v.get("status")) for _, v in plan.valid if v.get("status"))
    for code, count in sorted(statuses.items(), key=lambda kv: str(kv[0])):
        label = (
            STATUS_LABELS[code] if code else "Estado no reconocido (no habilita emisión automática)"
        )
        lines.append(f"Estado: {label}: {count}")
    if dry_run:
        lines.append(
            f"Vista previa: {len(plan.valid)} filas válidas, {len(plan.rejected)} rechazadas"
        )
        report = registry.ImportReport(rejected=list(plan.rejected))
    else:
        with db.session() as session:
            report = registry.import_plan(session, plan)
        lines.append(
            f"Importado: {report.created} nuevos, {report.updated} actualizados, "
            f"{report.unchanged} sin cambios, {len(report.rejected)} rechazados"
        )
    for line, reason in report.rejected:
        lines.append(f"  fila {line}: {reason}")
    return CommandResult(tuple(lines), 0 if plan.valid else 1)
