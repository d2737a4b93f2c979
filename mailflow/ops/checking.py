"""`mailflow check`: decide sample messages with no side effects and present the result."""

from __future__ import annotations

import datetime as dt
import errno
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailflow.app import App
from mailflow.intake.catalogue import Tramite
from mailflow.intake.decision import Decision
from mailflow.intake.findings import IdentityLookup
from mailflow.mail.authentication import header_sender, raw_from_problem
from mailflow.reasons import quote
from mailflow.registry.identity import identity_concerns
from mailflow.runners.reading import decide_raw
from mailflow.vocabulary import Disposition

MAX_FILE_BYTES = 64 * 1024 * 1024
_OS_ERRORS = {  # what people read instead of the operating system's English
    errno.ENOENT: "no existe",
    errno.EACCES: "no hay permiso para leerlo",
    errno.EPERM: "no hay permiso para leerlo",
    errno.EISDIR: "es una carpeta, no un archivo",
    errno.ENAMETOOLONG: "el nombre es demasiado largo",
    errno.EIO: "error de lectura del disco",
}


def check_bytes(
    app: App,
    raw: bytes,
    *,
    now: dt.datetime | None = None,
    identity: IdentityLookup | None = None,
) -> Decision:
    """Decide one raw message within the per-message CPU budget (`limits.decide_cpu_seconds`),
    as production does; the receipt time is its Date header, else `now`. Over budget: "review"
    with the reason. `identity` reads the applicant registry (`registry_reader`) and is applied
    after the sandboxed decision, as in the pipeline (the reader has no database); None skips
    the identity check."""
    decision = decide_raw(app, raw, now)
    if decision.disposition != Disposition.IGNORE:
        ambiguous = raw_from_problem(raw)  # From: must name exactly one mailbox, as in _route
        if ambiguous is not None:
            return decision.sent_to_review(ambiguous, "remitente_ambiguo")
    if (
        identity is None
        or decision.tramite is None
        or decision.disposition in (Disposition.IGNORE, Disposition.INFORM)
    ):
        return decision
    tramite = app.catalogue.get(decision.tramite)
    concerns = identity(tramite, decision.fields, header_sender(raw))
    return decision.sent_to_review("; ".join(concerns), "identidad") if concerns else decision


def registry_reader(app: App) -> IdentityLookup | None:
    """The identity check against the installation's registry, read-only, as production runs
    it; None when there is no database yet (an SQLite file that does not exist is not created).
    A database that cannot be read yields no identity concerns rather than an error."""
    url = make_url(app.settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and (
        not url.database or not Path(url.database).is_file()
    ):
        return None

    def lookup(tramite: Tramite, fields: Mapping[str, str], sender: str) -> list[str]:
        if not tramite.identity_sensitive:
            return []
        try:
            with app.database.session(readonly=True) as session:
                return identity_concerns(session, tramite, fields, sender)
        except SQLAlchemyError:
            return []

    return lookup


def check_files(app: App, files: Iterable[Path]) -> list[dict[str, Any]]:
    """One JSON-ready row per file; a file that cannot be read gets a review row marked
    `"error": "unreadable"` (the command then exits non-zero), never an exception."""
    rows: list[dict[str, Any]] = []
    identity = registry_reader(app)
    for path in files:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise OSError(f"archivo demasiado grande ({size} bytes)")
            raw = path.read_bytes()
        except OSError as exc:
            why = _OS_ERRORS.get(exc.errno or 0, "no se puede leer") if exc.errno else str(exc)
            row = _unreadable(path, f"No se pudo leer el archivo {quote(str(path))}: {why}")
            rows.append({**row, "error": "unreadable"})
            continue
        try:
            decision = check_bytes(app, raw, identity=identity)
        except Exception as exc:  # a bug must not hide the other files' results
            why = type(exc).__name__
            rows.append(_unreadable(path, f"Error interno al procesar el mensaje ({why})"))
            continue
        rows.append({"file": str(path), **decision.as_json()})
    return rows


def _unreadable(path: Path, reason: str) -> dict[str, Any]:
    return {
        "file": str(path),
        "tramite": None,
        "disposition": "review",
        "confidence": 0.0,
        "fields": {},
        "missing": [],
        "invalid": {},
        "signature": {"status": "absent"},
        "flags": [],
        "topic": None,
        "rules": [],
        "reasons": [reason],
    }


def render_table(rows: list[dict[str, Any]]) -> str:
    """A readable summary for people: one block per message."""
    out: list[str] = []
    for row in rows:
        out.append(f"{row['file']}")
        out.append(f"  decisión : {row['disposition']}")
        out.append(f"  trámite  : {row['tramite'] or '—'}  (confianza {row['confidence']:.0%})")
        out.append(f"  firma    : {row['signature']['status']}")
        if row["fields"]:
            out.append("  datos    : " + "; ".join(f"{k}={v}" for k, v in row["fields"].items()))
        if row["missing"]:
            out.append("  faltan   : " + ", ".join(row["missing"]))
        for reason in row["reasons"]:
            out.append(f"  · {reason}")
        out.append("")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["disposition"]] = counts.get(row["disposition"], 0) + 1
    out.append("Total: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(out)
