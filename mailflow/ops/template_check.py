"""Start-up check of mail templates: a reply or channel template that names a variable the
engine does not provide is rejected with `file:line: message`, before any mail is sent."""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from mailflow.errors import DefinitionError

SAMPLE_CONTEXT: dict[str, Any] = {
    "case": {
        "number": "EXP-2026-000001",
        "due_date": "16 de diciembre de 2026",
        "legal_receipt_day": "lunes 23 de noviembre de 2026",
        "receipt_rule": "Regla de recepción (fuente)",
    },
    "applicant": {"name": "Nombre Apellido"},
    "tramite": {"id": "prueba", "name": "Trámite de prueba"},
    "missing": ["Requisito"],
    "subsanacion_deadline": "30 de noviembre de 2026",
    "reason": "Motivo",
    "note": "Nota",
    "changes": ["Teléfono: +51987654321"],
    "documents": ["oficio_EXP-2026-000001.pdf"],
    "document": {"label": "oficio", "number": "1", "issued_at": "2026-11-23", "code": "X"},
    "revoked_at": "23/11/2026 10:00",
}
"""The variables effects.reply_context and the channel texts give every template (shape only)."""


def check_templates(
    env: jinja2.Environment, names: Iterable[str], institution: Mapping[str, Any]
) -> None:
    """Render each template (relative to templates/) with SAMPLE_CONTEXT under StrictUndefined;
    raise DefinitionError listing `file:line: variable desconocida …` for every failure."""
    strict = env.overlay(undefined=jinja2.StrictUndefined)
    errors: list[str] = []
    for name in sorted(set(names)):
        try:
            strict.get_template(name).render(**SAMPLE_CONTEXT, institution=dict(institution))
        except jinja2.TemplateSyntaxError as exc:
            errors.append(f"{exc.filename or name}:{exc.lineno}: sintaxis inválida: {exc.message}")
        except jinja2.TemplateNotFound as exc:
            errors.append(f"{name}:1: no existe la plantilla {exc.name}")
        except jinja2.UndefinedError as exc:
            where = _template_line(exc, strict, name)
            errors.append(f"{where}: la plantilla usa algo que el motor no ofrece: {exc.message}")
    if errors:
        raise DefinitionError("\n".join(errors))


def _template_line(exc: BaseException, env: jinja2.Environment, name: str) -> str:
    """`file:line` of the innermost template frame of `exc` (jinja keeps template lines)."""
    template = env.get_template(name)
    found = f"{template.filename or name}:1"
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2") and Path(frame.filename).exists():
            found = f"{frame.filename}:{frame.lineno}"
    return found
