"""The applicant registry: spreadsheet import with column mapping, matching and audited updates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, exists, or_, select
from sqlalchemy.orm import Session

from mailflow.errors import MailflowError
from mailflow.intake.values import normalise
from mailflow.store.audit import record
from mailflow.store.models import Applicant, Case
from mailflow.store.txcache import lookups, tx_info, unflushed
from mailflow.textnorm import fold
from mailflow.vocabulary import AuditKind

# Applicant attribute → (value kind, header synonyms folded), in display order.
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "full_name": ("name", ("nombres y apellidos", "apellidos y nombres", "nombre completo",
                           "nombres", "nombre", "solicitante", "refugiado", "titular")),
    "document_number": ("document", ("n doc", "nro doc", "no doc", "num doc", "numero de documento",
                                     "documento de identidad", "documento", "doc", "pasaporte",
                                     "cedula", "dni", "n documento")),
    "carne_extranjeria": ("carne", ("carne de extranjeria", "carne", "carnet", "ce", "n carne",
                                    "nro carne", "carne ce")),
    "email": ("email", ("correo electronico", "correo", "email", "e mail", "mail")),
    "status": ("text", ("estado", "condicion", "situacion", "calidad")),
    "nationality": ("nationality", ("nacionalidad", "pais de origen", "pais")),
    "phone": ("phone", ("telefono", "celular", "movil", "telf", "tel", "whatsapp")),
}  # fmt: skip
TARGET_LABELS = {
    "full_name": "Nombres y apellidos", "document_number": "N° de documento",
    "carne_extranjeria": "Carné de extranjería", "email": "Correo registrado", "status": "Estado",
    "nationality": "Nacionalidad", "phone": "Teléfono",
}  # fmt: skip
# Case field ids → applicant attribute (for cross-checks and data updates).
FIELD_TO_ATTR = {
    "nombres_apellidos": "full_name", "documento_identidad": "document_number",
    "carne_extranjeria": "carne_extranjeria", "correo": "email", "nacionalidad": "nationality",
    "telefono": "phone",
}  # fmt: skip
MAX_ROWS = 100_000


class RegistryError(MailflowError):
    """A spreadsheet that cannot be read (the message says what and where)."""


@dataclass(frozen=True)
class Sheet:
    """A spreadsheet read as text: its header row and data rows (line numbers as in the file)."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass
class Plan:
    """Rows ready to import (attribute → normalised value) and rows rejected with a reason."""

    valid: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImportReport:
    """What a registry import did: rows created, updated and unchanged, and the rejected ones as
    (line number, Spanish reason).
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_sheet(data: bytes, filename: str) -> Sheet:
    """Read a CSV (any usual delimiter, UTF-8 or Latin-1) or an XLSX (first sheet)."""
    if filename.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK":
        lines = _xlsx_rows(data, filename)
    else:
        lines = _csv_rows(data)
    numbered = [(i, [c.strip() for c in row]) for i, row in enumerate(lines, 1)]
    numbered = [(i, row) for i, row in numbered if any(row)]
    if not numbered:
        raise RegistryError(f"{filename}: el archivo está vacío")
    (_, headers), body = numbered[0], numbered[1:]
    if len(body) > MAX_ROWS:
        raise RegistryError(f"{filename}: demasiadas filas ({len(body)}; máximo {MAX_ROWS})")
    width = len(headers)
    return Sheet(headers, [(i, (row + [""] * width)[:width]) for i, row in body])


def suggest_mapping(headers: list[str]) -> dict[int, str]:
    """Column index → applicant attribute, guessed from header names (accents and case ignored)."""
    mapping: dict[int, str] = {}
    folded = [fold(h) for h in headers]
    for exact in (True, False):
        for attr, (_, synonyms) in TARGETS.items():
            if attr in mapping.values():
                continue
            for i, header in enumerate(folded):
                if i in mapping or not header:
                    continue
                if any(header == s if exact else _contains(header, s) for s in synonyms):
                    mapping[i] = attr
                    break
    return dict(sorted(mapping.items()))


def plan_import(sheet: Sheet, mapping: Mapping[int, str]) -> Plan:
    """Normalise every row by the mapping; reject rows without a name or an identity number."""
    attrs = set(mapping.values())
    if "full_name" not in attrs or not attrs & {"document_number", "carne_extranjeria"}:
        raise RegistryError(
            "Asigne al menos la columna de nombres y apellidos y la de documento o carné."
        )
    plan = Plan()
    for line, row in sheet.rows:
        values: dict[str, str] = {}
        problems: list[str] = []
        for col, attr in mapping.items():
            raw = row[col] if col < len(row) else ""
            if not raw:
                continue
            value, reason = normalise(TARGETS[attr][0], raw)
            if value is None:
                problems.append(f"{TARGET_LABELS[attr]}: {reason}")
            else:
                values[attr] = value.lower() if attr == "status" else value
        if "full_name" not in values and not problems:
            problems.append("falta el nombre")
        if not values.keys() & {"document_number", "carne_extranjeria"} and not problems:
            problems.append("falta el número de documento o de carné")
        if problems:
            plan.rejected.append((line, "; ".join(problems)))
        else:
            plan.valid.append((line, values))
    return plan


def import_plan(session: Session, plan: Plan) -> ImportReport:
    """Upsert the valid rows by carné, then by document number; report what changed."""
    report = ImportReport(rejected=list(plan.rejected))
    for _, values in plan.valid:
        person = find_applicant(
            session, document=values.get("document_number"), carne=values.get("carne_extranjeria")
        )
        if person is None:
            session.add(Applicant(**values))
            session.flush()
            report.created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(person, k) != v}
        for key, value in changed.items():
            setattr(person, key, value)
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


_HAS_PEOPLE = "registry.has_people"  # the transaction in which a yes holds
_NOBODY = "registry.empty"
_CHANGED = "registry.changed"  # this session added or deleted an Applicant in the transaction
_WATCHED = "registry.watched"
_UNKNOWN = object()  # a key `find_applicant` has not looked up in this transaction


def registry_has_people(session: Session) -> bool:
    """Whether the applicant registry holds anyone, remembered per transaction (txcache).

    A yes holds for the whole transaction when this session has added nobody in it, else
    only while the (sub)transaction that saw it is open (a rolled back savepoint may take
    people with it); a no holds until this session adds someone. Adding or deleting an
    Applicant through the session forgets both.
    """
    info = tx_info(session)
    seen_in = info.get(_HAS_PEOPLE)
    if seen_in is not None and seen_in.is_active:
        return True
    if info.get(_NOBODY):
        return False
    _watch(session)
    stmt = select(exists().where(Applicant.id.is_not(None)))
    if any(isinstance(o, Applicant) for o in (*session.new, *session.deleted)):
        found = session.scalar(stmt)
    else:
        with session.no_autoflush:  # nothing pending changes who is registered
            found = session.scalar(stmt)
    if found:
        held = session.get_transaction()
        if info.get(_CHANGED):
            held = session.get_nested_transaction() or held
        info[_HAS_PEOPLE] = held
        return True
    info[_NOBODY] = True
    return False


def _known_empty(session: Session) -> bool:
    """Whether `registry_has_people` would say no without asking the database (this
    transaction already saw an empty registry and has added nobody since)."""
    info = tx_info(session)
    seen_in = info.get(_HAS_PEOPLE)
    return not (seen_in is not None and seen_in.is_active) and bool(info.get(_NOBODY))


def _watch(session: Session) -> None:
    if session.info.get(_WATCHED):
        return
    session.info[_WATCHED] = True
    event.listen(session, "transient_to_pending", _changed)
    event.listen(session, "persistent_to_deleted", _changed)


def _changed(session: Session, instance: object) -> None:
    if isinstance(instance, Applicant):
        info = tx_info(session)
        info[_CHANGED] = True
        info.pop(_NOBODY, None)
        info.pop(_HAS_PEOPLE, None)


def find_applicant(
    session: Session,
    email: str | None = None,
    document: str | None = None,
    carne: str | None = None,
) -> Applicant | None:
    """The registered person with this carné, else document number, else registered email
    (one query for the three; the oldest record when several match the same key).

    What a key found is remembered for the rest of the transaction (`txcache.lookups`: until
    it writes to the registry or rolls a savepoint back): asked again (the case's signals,
    its issuance facts, the identity check of the same message), no query. Like the answer of
    `registry_has_people`, it does not see a person another transaction registers meanwhile
    (PostgreSQL, read committed): the next transaction does."""
    if _known_empty(session):
        return None  # nobody to find: the keys need not be normalised
    keys: list[tuple[str, str]] = []
    for kind, attribute, raw in (
        ("carne", "carne_extranjeria", carne),
        ("document", "document_number", document),
        ("email", "email", email),
    ):
        value = normalise(kind, raw)[0] if raw else None
        if value:
            keys.append((attribute, value))
    if not keys or not registry_has_people(session):
        return None
    writing = unflushed(session, Applicant)  # Applicants to write before the query
    # (attribute, normalised value) → the oldest Applicant with it, or None
    known = lookups(session, Applicant)
    if known is not None:
        hits = [known.get(key, _UNKNOWN) for key in keys]
        if all(h is None or (isinstance(h, Applicant) and h in session) for h in hits):
            return next((h for h in hits if isinstance(h, Applicant)), None)
    matches = _look_up(session, keys, writing)
    if known is not None:
        known.update(zip(keys, matches, strict=True))
    return next((m for m in matches if m is not None), None)


def _look_up(
    session: Session, keys: list[tuple[str, str]], writing: bool
) -> list[Applicant | None]:
    """For each (attribute, normalised value) of `keys`, the oldest Applicant with it, or
    None: one query for all. `writing`: Applicants not yet flushed are written first."""
    stmt = select(Applicant).where(
        or_(*(getattr(Applicant, attribute) == value for attribute, value in keys))
    )
    stmt = stmt.order_by(Applicant.id)
    if writing:
        found = list(session.scalars(stmt))
    else:
        with session.no_autoflush:  # no Applicant pending: nothing to write first
            found = list(session.scalars(stmt))
    return [next((a for a in found if getattr(a, attr) == value), None) for attr, value in keys]


def is_registered_sender(applicant: Applicant, sender: str | None) -> bool:
    """Whether `sender` is the applicant's registered email (identity-changing requests)."""
    value = normalise("email", sender)[0] if sender else None
    return bool(value and applicant.email and value == applicant.email.lower())


def cross_check(applicant: Applicant, fields: Mapping[str, Any]) -> list[str]:
    """Spanish discrepancies between a request's fields and the registry."""
    out: list[str] = []
    for field_id, attr in FIELD_TO_ATTR.items():
        given, known = fields.get(field_id), getattr(applicant, attr)
        if not given or not known:
            continue
        kind = TARGETS[attr][0]
        value = normalise(kind, str(given))[0] or str(given)
        if _same(kind, value, str(known)):
            continue
        out.append(f"{TARGET_LABELS[attr]}: la solicitud indica «{given}», el registro «{known}»")
    return out


def apply_data_update(
    session: Session,
    applicant: Applicant,
    fields: Mapping[str, Any],
    actor: str,
    case: Case,
    now: dt.datetime,
) -> dict[str, tuple[str | None, str]]:
    """Apply confirmed new values to the registry and audit them on the case (before/after).

    A value equal to the registered one but for accents or case ("maria perez") is kept as
    registered; only real changes are written. Returns attribute → (before, after).
    """
    changes: dict[str, tuple[str | None, str]] = {}
    for field_id, attr in FIELD_TO_ATTR.items():
        given = fields.get(field_id)
        if not given:
            continue
        kind = TARGETS[attr][0]
        value = normalise(kind, str(given))[0]
        before = getattr(applicant, attr)
        if value and not (before and _same(kind, value, str(before))):
            changes[attr] = (before, value)
            setattr(applicant, attr, value)
    if changes:
        listed = ", ".join(TARGET_LABELS[a].lower() for a in changes)
        record(
            session,
            AuditKind.DATA_UPDATE,
            f"Datos del registro actualizados: {listed}",
            at=now,
            actor=actor,
            case_id=case.id,
            data={
                "applicant_id": applicant.id,
                "before": {a: b for a, (b, _) in changes.items()},
                "after": {a: v for a, (_, v) in changes.items()},
            },
        )
    return changes


def _same(kind: str, a: str, b: str) -> bool:
    if kind in ("name", "nationality", "text"):
        return fold(a) == fold(b)
    if kind == "phone":
        return a.lstrip("+")[-9:] == b.lstrip("+")[-9:]
    return a.upper() == b.upper()


def _contains(header: str, synonym: str) -> bool:
    return len(synonym) > 3 and f" {synonym} " in f" {header} "


def _csv_rows(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return list(csv.reader(io.StringIO(text), dialect))


def _xlsx_rows(data: bytes, filename: str) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise RegistryError(f"{filename}: no es un archivo Excel (.xlsx) válido ({exc})") from exc
    sheet = book.worksheets[0]
    rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)
