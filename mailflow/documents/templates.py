"""Document templates (templates/documents/*.yaml) and their wording filled with a case's data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from mailflow.errors import ConfigError

KINDS = ("cargo", "oficio", "autorizacion_viaje")
MESES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Spec):
    """One column of a document's table: its `header`, the jinja2 `value` rendered per row
    (with `item` and `indice` in the context), its relative `width` (a share of the table's
    width, not points) and whether the cells are set in a small monospaced font (`mono`)."""

    header: str
    value: str
    width: float = 1.0
    mono: bool = False


class TableSpec(_Spec):
    """A table in a document: an optional `title`, one row per item of the context list named
    `rows`, its `columns`, and the text shown instead when the list is empty (`empty`)."""

    title: str = ""
    rows: str  # name of a list in the context, e.g. "documentos"
    columns: tuple[Column, ...]
    empty: str = "Ninguno."


class SignatureSpec(_Spec):
    """The signature block: its `align`ment, the visible signature's `width` and `height` in
    points, and the jinja2 `lines` printed under it (name, post)."""

    align: Literal["left", "center", "right"] = "center"
    width: float = 230
    height: float = 58
    lines: tuple[str, ...] = ()


class DocumentTemplate(_Spec):
    """One kind of document: every string is a jinja2 template over the case's data."""

    kind: str
    title: str
    subtitle: str = ""
    number_line: str = ""
    header_lines: tuple[str, ...] = ()
    date_line: str = "{{ institution.city }}, {{ fecha_emision | fecha_larga }}"
    addressee: tuple[str, ...] = ()
    reference: tuple[tuple[str, str], ...] = ()
    paragraphs: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    table: TableSpec | None = None
    closing: tuple[str, ...] = ()
    signature: SignatureSpec = SignatureSpec()
    valid_from: str = ""
    valid_until: str = ""
    variants: Mapping[str, Mapping[str, Any]] = {}


@dataclass(frozen=True)
class ReceivedFile:
    """A document the applicant sent, listed on the cargo with its fingerprint."""

    nombre: str
    sha256: str
    tamano: int | None = None


@dataclass(frozen=True)
class CaseData:
    """What a document needs to know about its case (built from a Case row or by hand)."""

    case_id: int
    expediente: str
    tramite: str
    tramite_nombre: str
    campos: Mapping[str, Any]
    received_at: dt.datetime
    legal_receipt_day: dt.date
    due_date: dt.date | None = None
    documentos: Sequence[ReceivedFile] = ()
    regla_recepcion: str = ""  # the receipt rule applied, with its legal source (Calendario)


@dataclass(frozen=True)
class DocumentText:
    """A document's wording, ready to lay out: every template string already rendered."""

    kind: str
    title: str
    subtitle: str
    number_line: str
    header_lines: tuple[str, ...]
    date_line: str
    addressee: tuple[str, ...]
    reference: tuple[tuple[str, str], ...]
    paragraphs: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    table_title: str
    table_headers: tuple[str, ...]
    table_widths: tuple[float, ...]
    table_mono: tuple[bool, ...]
    table_rows: tuple[tuple[str, ...], ...]
    table_empty: str
    closing: tuple[str, ...]
    signature: SignatureSpec
    valid_from: dt.date | None
    valid_until: dt.date | None
    extra: Mapping[str, Any] = field(default_factory=dict)


def fecha_larga(value: dt.date | str | None) -> str:
    """23 de noviembre de 2026."""
    day = _as_date(value)
    return "—" if day is None else f"{day.day} de {MESES[day.month - 1]} de {day.year}"


def fecha_corta(value: dt.date | str | None) -> str:
    """23/11/2026."""
    day = _as_date(value)
    return "—" if day is None else day.strftime("%d/%m/%Y")


def _as_date(value: dt.date | str | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class _Blank(jinja2.Undefined):
    """Missing case data prints as a dash instead of failing the whole document."""

    def __str__(self) -> str:
        return "—"


def make_environment(*, strict: bool = False) -> SandboxedEnvironment:
    """The sandboxed jinja2 environment of document templates, with the date filters."""
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined if strict else _Blank, autoescape=False
    )
    env.filters["fecha_larga"] = fecha_larga
    env.filters["fecha_corta"] = fecha_corta
    return env


class Filler:
    """Fills document templates with one sandboxed environment, compiling each distinct
    template string and each (template, tramite) variant once, for reuse across documents.

    Keep one per loaded template set (load_templates attaches one): the cache grows with the
    number of distinct strings in the templates, not with the documents issued.
    """

    def __init__(self) -> None:
        self.env = make_environment()
        self._compiled: dict[str, jinja2.Template] = {}
        self._variants: dict[tuple[int, str], tuple[DocumentTemplate, DocumentTemplate]] = {}

    def render(self, text: str, context: Mapping[str, Any]) -> str:
        """`text` rendered over `context`, stripped ("" for an empty string)."""
        if not text:
            return ""
        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = self._compiled[text] = self.env.from_string(text)
        return compiled.render(context).strip()

    def variant(self, template: DocumentTemplate, tramite: str) -> DocumentTemplate:
        """variant(template, tramite), computed once per template object and tramite."""
        key = (id(template), tramite)
        cached = self._variants.get(key)
        if cached is None or cached[0] is not template:  # id() reused by another object
            cached = self._variants[key] = (template, variant(template, tramite))
        return cached[1]


class DocumentTemplates(dict[str, DocumentTemplate]):
    """The templates by kind, with the Filler that caches their compiled strings."""

    def __init__(self, templates: Mapping[str, DocumentTemplate]) -> None:
        super().__init__(templates)
        self.filler = Filler()


def load_templates(directory: Path) -> DocumentTemplates:
    """Read every templates/documents/*.yaml; a bad file raises ConfigError naming it."""
    templates: dict[str, DocumentTemplate] = {}
    env = make_environment()
    for path in sorted(directory.glob("*.yaml")):
        template = _load_one(path)
        _check_syntax(template, path, env)
        templates[template.kind] = template
    missing = [kind for kind in KINDS if kind not in templates]
    if missing:
        raise ConfigError(f"{directory}: faltan plantillas de documento: {', '.join(missing)}")
    return DocumentTemplates(templates)


def _load_one(path: Path) -> DocumentTemplate:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML inválido: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: la plantilla debe ser un mapa de claves")
    try:
        template = DocumentTemplate.model_validate(data)
        for override in template.variants.values():
            DocumentTemplate.model_validate({**data, **dict(override), "variants": {}})
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: plantilla inválida ({details})") from exc
    return template


def _strings(template: DocumentTemplate) -> list[str]:
    out = [template.title, template.subtitle, template.number_line, template.date_line]
    out += [*template.header_lines, *template.addressee, *template.paragraphs, *template.closing]
    out += [text for pair in (*template.reference, *template.fields) for text in pair]
    out += [*template.signature.lines, template.valid_from, template.valid_until]
    if template.table is not None:
        out += [template.table.title] + [c.value for c in template.table.columns]
    return out


def _check_syntax(template: DocumentTemplate, path: Path, env: SandboxedEnvironment) -> None:
    variants = [template] + [variant(template, name) for name in template.variants]
    for each in variants:
        for text in _strings(each):
            try:
                env.parse(text)
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(f"{path}: error en la plantilla {text!r}: {exc}") from exc


def variant(template: DocumentTemplate, tramite: str) -> DocumentTemplate:
    """The template with the overrides for `tramite` applied (itself when there are none)."""
    override = template.variants.get(tramite)
    if not override:
        return template
    data = {**template.model_dump(), **override, "variants": {}}
    return DocumentTemplate.model_validate(data)


def build_context(
    case: CaseData,
    *,
    institution: Mapping[str, Any],
    number: str | None,
    issued_at: dt.datetime,
    timezone: str,
) -> dict[str, Any]:
    """The variables a document template sees."""
    zone = ZoneInfo(timezone)
    received = case.received_at.astimezone(zone)
    return {
        "institution": dict(institution),
        "numero": number or case.expediente,
        "expediente": case.expediente,
        "tramite": case.tramite,
        "tramite_nombre": case.tramite_nombre,
        "campos": dict(case.campos),
        "fecha_emision": issued_at.astimezone(zone).date(),
        "fecha_recepcion": received.date(),
        "hora_recepcion": received.strftime("%H:%M"),
        "dia_legal_recepcion": case.legal_receipt_day,
        "regla_recepcion": case.regla_recepcion,
        "fecha_vencimiento": case.due_date,
        "documentos": [
            {"nombre": d.nombre, "sha256": d.sha256, "tamano": d.tamano} for d in case.documentos
        ],
    }


def fill(
    template: DocumentTemplate, context: Mapping[str, Any], *, filler: Filler | None = None
) -> DocumentText:
    """Render every string of the template (with the case's tramite variant) over `context`.

    `filler` (e.g. DocumentTemplates.filler) reuses compiled strings; without one, a fresh
    Filler compiles them for this document only.
    """
    filler = filler or Filler()
    spec = filler.variant(template, str(context.get("tramite", "")))

    def r(text: str) -> str:
        return filler.render(text, context)

    table = spec.table
    rows: list[tuple[str, ...]] = []
    if table is not None:
        for index, item in enumerate(context.get(table.rows) or [], start=1):
            row_ctx = {**context, "item": item, "indice": index}
            rows.append(tuple(filler.render(c.value, row_ctx) for c in table.columns))
    signature = spec.signature.model_copy(
        update={"lines": tuple(r(line) for line in spec.signature.lines)}
    )
    return DocumentText(
        kind=spec.kind,
        title=r(spec.title),
        subtitle=r(spec.subtitle),
        number_line=r(spec.number_line),
        header_lines=tuple(r(line) for line in spec.header_lines),
        date_line=r(spec.date_line),
        addressee=tuple(r(line) for line in spec.addressee),
        reference=tuple((r(label), r(value)) for label, value in spec.reference),
        paragraphs=tuple(p for p in (r(p) for p in spec.paragraphs) if p),
        fields=tuple((r(label), r(value)) for label, value in spec.fields),
        table_title=r(table.title) if table else "",
        table_headers=tuple(c.header for c in table.columns) if table else (),
        table_widths=tuple(c.width for c in table.columns) if table else (),
        table_mono=tuple(c.mono for c in table.columns) if table else (),
        table_rows=tuple(rows),
        table_empty=table.empty if table else "",
        closing=tuple(r(line) for line in spec.closing),
        signature=signature,
        valid_from=_as_date(r(spec.valid_from)),
        valid_until=_as_date(r(spec.valid_until)),
    )
