"""The procedure catalogue: rules/*.yaml loaded into validated Tramite definitions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mailflow.errors import DefinitionError
from mailflow.yamlsource import YamlSource, load_yaml

OFF_CATALOGUE_FILE = "off_catalogue.yaml"
FIELDS_FILE = "fields.yaml"
CALENDAR_FILE = "calendar.yaml"  # the legal calendar (mailflow.clock.calendar_rules), not a trámite
POLICY_FILES = ("assignment.yaml", "vulnerabilidad.yaml")  # assignment and priority, not trámites


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionalField(_Strict):
    """A field required only under a condition of the request (`when`: today only `refugiado`, a
    recognised refugee).
    """

    field: str
    when: Literal["refugiado"]


IssueMode = Literal["automatic", "staff_approval"]
Condition = Literal[
    "requisitos_completos",
    "firma_valida",
    "refugiado_reconocido",
    "documento_coincide",
    "remitente_registrado",
]
RegistryField = Literal[
    "nombres_apellidos", "documento_identidad", "carne_extranjeria", "correo", "nacionalidad",
    "telefono",
]  # fmt: skip
"""Request fields a procedure may write into the registry (registry.FIELD_TO_ATTR keys)."""
Alert = Literal["salida_pasada", "salida_antes_del_plazo", "destino_pais_de_nacionalidad"]
AUTOMATIC_FLOOR: tuple[str, ...] = (
    "requisitos_completos",
    "firma_valida",
    "refugiado_reconocido",
    "documento_coincide",
    "remitente_registrado",
)
"""Conditions every `issue: automatic` procedure must list (issue 11: the safety floor)."""


class Tramite(_Strict):
    """One procedure of the catalogue, as the commission published it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    subject: str
    aliases: tuple[str, ...] = ()
    body_keywords: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = ()
    conditional_fields: tuple[ConditionalField, ...] = ()
    optional_fields: tuple[str, ...] = ()
    required_attachments: tuple[str, ...] = ()
    signature: Literal["none", "required"] = "none"
    # An escrito PDF without digital signature (signed by hand and scanned): received with a flag
    # for staff to confirm ("accept"), or sent to staff first ("review").
    unsigned_escrito: Literal["accept", "review"] = "accept"
    term_days: int | None = Field(None, ge=1, le=365)
    filing_limit_days: int | None = Field(None, ge=1, le=365)
    product: Literal["reply", "cargo", "oficio", "none"] = "none"
    product_label: str = ""
    documents: tuple[str, ...] = ()
    mailbox: str
    machine: str
    status: Literal["active", "suspended", "other_channel"] = "active"
    inform_reason: str = ""
    identity_sensitive: bool = False
    issue: IssueMode = "staff_approval"
    conditions: tuple[Condition, ...] = ()
    alerts: tuple[Alert, ...] = ()
    updates_registry: tuple[RegistryField, ...] = ()

    @field_validator("inform_reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def signature_required(self) -> bool:
        """True when the procedure's YAML says `signature: required` (an escrito signed by hand or
        digitally).
        """
        return self.signature == "required"

    @property
    def informative(self) -> bool:
        """True for a procedure not processed here (status other than `active`): it gets an
        informative reply, never a case.
        """
        return self.status != "active"

    def all_fields(self) -> tuple[str, ...]:
        """Every field id this procedure reads: required, conditional and optional."""
        cond = tuple(c.field for c in self.conditional_fields)
        return tuple(dict.fromkeys(self.required_fields + cond + self.optional_fields))


class OffCatalogueTopic(_Strict):
    """A request this front desk does not process: with a `channel` (where it is handled) it
    gets an informative reply naming it; without one it goes to staff with its topic named."""

    id: str
    label: str
    phrases: tuple[str, ...]
    overrides_procedures: bool = False
    channel: str = ""

    @field_validator("channel")
    @classmethod
    def _strip_channel(cls, value: str) -> str:
        return " ".join(value.split())


class _OffCatalogueFile(_Strict):
    topics: tuple[OffCatalogueTopic, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    """All procedures by id, in file order, plus the off-catalogue topics."""

    tramites: dict[str, Tramite]
    topics: tuple[OffCatalogueTopic, ...]

    def get(self, tramite_id: str) -> Tramite:
        """The procedure with id `tramite_id`. Raises KeyError for an id not in the catalogue."""
        return self.tramites[tramite_id]

    def topic(self, topic_id: str | None) -> OffCatalogueTopic | None:
        """The off-catalogue topic with this id, or None."""
        return next((t for t in self.topics if t.id == topic_id), None)

    def __iter__(self) -> Any:
        return iter(self.tramites.values())


def _describe(exc: ValidationError, src: YamlSource) -> str:
    lines = [f"{src.path}: definición inválida"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(raíz)"
        msg = "clave desconocida" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {src.where(*loc)}: {where}: {msg}")
    return "\n".join(lines)


def load_catalogue(rules_dir: Path, known_fields: Iterable[str] | None = None) -> Catalogue:
    """Load every procedure in rules_dir; reject bad or inconsistent definitions with file:line."""
    if not rules_dir.is_dir():
        raise DefinitionError(f"{rules_dir}: no existe el directorio de reglas")
    tramites: dict[str, Tramite] = {}
    topics: tuple[OffCatalogueTopic, ...] = ()
    fields = set(known_fields) if known_fields is not None else None
    for path in sorted(rules_dir.glob("*.yaml")):
        if path.name in (FIELDS_FILE, CALENDAR_FILE, *POLICY_FILES):
            continue
        src = load_yaml(path)
        try:
            if path.name == OFF_CATALOGUE_FILE:
                topics = _OffCatalogueFile.model_validate(src.data or {}).topics
                continue
            if not isinstance(src.data, dict):
                raise src.error("se esperaba un mapa con la definición del trámite")
            tramite = Tramite.model_validate(src.data)
        except ValidationError as exc:
            raise DefinitionError(_describe(exc, src)) from exc
        if path.stem != tramite.id:
            raise src.error(f"el id {tramite.id!r} no coincide con el nombre del archivo", "id")
        if tramite.id in tramites:
            raise src.error(f"id de trámite duplicado: {tramite.id!r}", "id")
        if fields is not None:
            _check_fields(src, tramite, fields)
        _check_policy(src, tramite)
        tramites[tramite.id] = tramite
    if not tramites:
        raise DefinitionError(f"{rules_dir}: no hay trámites definidos (*.yaml)")
    return Catalogue(tramites=tramites, topics=topics)


def _check_fields(src: YamlSource, tramite: Tramite, fields: set[str]) -> None:
    known = ", ".join(sorted(fields))
    for key in ("required_fields", "optional_fields", "required_attachments"):
        for i, field_id in enumerate(getattr(tramite, key)):
            if field_id not in fields:
                raise src.error(
                    f"campo desconocido {field_id!r} en {key} (definidos en {FIELDS_FILE}: {known})",
                    key,
                    i,
                )
    for i, cond in enumerate(tramite.conditional_fields):
        if cond.field not in fields:
            raise src.error(f"campo desconocido {cond.field!r}", "conditional_fields", i)
    if tramite.status == "active" and tramite.term_days is None:
        raise src.error("term_days es obligatorio para un trámite activo")


def _check_policy(src: YamlSource, tramite: Tramite) -> None:
    """An automatic procedure must issue an oficio and list every condition of the floor."""
    if tramite.issue != "automatic":
        return
    if tramite.product != "oficio":
        raise src.error(
            f"issue: automatic solo se admite para trámites cuyo producto es un oficio "
            f"(este tiene product: {tramite.product})",
            "issue",
        )
    if "autorizacion_viaje" in tramite.documents:
        raise src.error(
            "issue: automatic no se admite para la autorización de viaje: requiere la aprobación "
            "del personal (use issue: staff_approval)",
            "issue",
        )
    absent = [c for c in AUTOMATIC_FLOOR if c not in tramite.conditions]
    if absent:
        raise src.error(
            "issue: automatic exige las condiciones "
            + ", ".join(AUTOMATIC_FLOOR)
            + f"; faltan: {', '.join(absent)}",
            "conditions",
        )
