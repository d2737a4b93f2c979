"""Start-up checks run by `mailflow run` and `serve` before any mail is touched.

Each check is a small named object in the style of mailflow.triage.automatic: `name`, `description`
and `check(app, env)` returning findings. A finding of severity "error" stops the service
with a message that says what is missing and how to fix it; a "warning" is logged and shown
by `mailflow health`. A new check (e.g. the Migraciones address) is one more entry in CHECKS.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlsplit

from mailflow.errors import MailflowError

if TYPE_CHECKING:
    from mailflow.app import App

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem found at start-up: the check that found it, how serious, what to do."""

    check: str
    severity: Severity
    message: str


class StartupError(MailflowError):
    """The service cannot start; the message lists every error found, one per line."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = ["no se puede iniciar el servicio:"]
        lines += [f"  - {f.message}" for f in self.findings]
        super().__init__("\n".join(lines))


class StartupCheck(Protocol):
    """A named start-up check (see CHECKS)."""

    name: str
    description: str

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """Findings (error or warning) for `app` under the environment `env`; an empty list when all
        is well. Must not raise for a bad configuration: it reports it.
        """


def document_procedures(app: App) -> dict[str, list[str]]:
    """Procedures whose lifecycle issues documents: {tramite id: [document kinds]}."""
    out: dict[str, list[str]] = {}
    for tramite in app.catalogue:
        machine = app.machines.get(tramite.machine)
        if machine is None:
            continue
        kinds = {
            e.arg or ""
            for t in machine.transitions
            for e in t.effects
            if e.kind == "issue_document"
        }
        if kinds:
            out[tramite.id] = sorted(kinds)
    return out


class SigningKey:
    """A signing key and its password when any procedure issues documents."""

    name = "signing_key"
    description = "clave de firma de documentos (PKCS#12) y su contraseña"

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """An error naming the procedures that issue signed documents when the PKCS #12 signing
        key (settings.signing, its password from the environment) cannot be loaded; empty when
        it loads or no procedure issues documents.
        """
        procedures = document_procedures(app)
        if not procedures:
            return []
        from mailflow.documents.signing_key import inspect_pkcs12

        which = ", ".join(sorted(procedures))
        try:
            inspect_pkcs12(app.settings, env)
        except MailflowError as exc:
            return [
                Finding(
                    self.name,
                    "error",
                    f"{exc} (los trámites {which} emiten documentos firmados)",
                )
            ]
        return []


class DatabaseReachable:
    """The database answers (PostgreSQL) or its folder can be written (SQLite)."""

    name = "database"
    description = "base de datos accesible"

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """An error when the SQLite file's folder cannot be created or written, or the database
        server cannot be reached; empty otherwise.
        """
        from mailflow.store.db import parse_url

        url = parse_url(app.settings.effective_database_url)
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite":
            if url.database in (None, "", ":memory:"):
                return []
            folder = Path(str(url.database)).resolve().parent
            existing = next(p for p in (folder, *folder.parents) if p.exists())
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                return [
                    Finding(
                        self.name,
                        "error",
                        f"database_url: no se puede escribir en {existing} para crear {shown}; "
                        "dé permisos de escritura o indique otro data_dir (MAILFLOW_DATA_DIR)",
                    )
                ]
            return []
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        engine = create_engine(url, connect_args={"connect_timeout": 10})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            return [
                Finding(
                    self.name,
                    "error",
                    f"database_url: no se puede conectar a {shown} ({detail}); compruebe que "
                    "el servidor esté en marcha y la URL en database_url o MAILFLOW_DATABASE_URL",
                )
            ]
        finally:
            engine.dispose()
        return []


def _url_problem(key: str, url: str, schemes: tuple[str, ...], needs_user: bool) -> str | None:
    parts = urlsplit(url)
    example = {"imap.url": "imaps://usuario:clave@imap.example.org/INBOX"}.get(
        key, "smtp+starttls://usuario:clave@smtp.example.org:587"
    )
    if parts.scheme not in schemes:
        return f"{key}: el esquema {parts.scheme!r} no es válido; use {', '.join(schemes)} (p. ej. {example})"
    try:
        _ = parts.port
    except ValueError:
        server = parts.netloc.rpartition("@")[2]  # never echo the password
        return f"{key}: el puerto de {server!r} no es un número válido (p. ej. {example})"
    if not parts.hostname:
        return f"{key}: falta el servidor en la URL (p. ej. {example})"
    if needs_user and not parts.username:
        return f"{key}: falta el usuario del buzón en la URL (p. ej. {example})"
    return None


class MailboxUrls:
    """imap.url and smtp.url are well-formed; a service with no way in or out is warned."""

    name = "mailbox_urls"
    description = "URLs de los buzones IMAP y SMTP bien formadas"

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """Errors for malformed imap/smtp URLs (scheme, user, the password under password
        logins) and incomplete OAuth2 settings or a refused token under xoauth2; warnings when
        there is no way in (no IMAP, no inbound SMTP) or out (no SMTP, no outbox_dir).
        """
        s = app.settings
        found: list[Finding] = []
        if s.imap.url:
            problem = _url_problem("imap.url", s.imap.url, ("imap", "imaps"), needs_user=True)
            if problem is None and s.imap.auth == "password" and not urlsplit(s.imap.url).password:
                problem = (
                    "imap.url: falta la contraseña del buzón en la URL (imap://usuario:clave@…) "
                    "o use imap.auth: xoauth2 con la sección oauth2"
                )
            if problem:
                found.append(Finding(self.name, "error", problem + " (o MAILFLOW_IMAP_URL)"))
        elif not s.inbound_smtp.enabled:
            found.append(
                Finding(
                    self.name,
                    "warning",
                    "no hay entrada de correo: imap.url (MAILFLOW_IMAP_URL) está vacío y "
                    "inbound_smtp.enabled es false",
                )
            )
        if "xoauth2" in (s.imap.auth, s.smtp.auth):
            found += self._token(app)
        if s.smtp.url:
            schemes = ("smtp", "smtps", "smtp+starttls")
            oauth = s.smtp.auth == "xoauth2"
            problem = _url_problem("smtp.url", s.smtp.url, schemes, needs_user=oauth)
            if problem:
                found.append(Finding(self.name, "error", problem + " (o MAILFLOW_SMTP_URL)"))
        elif s.outbox_dir is None:
            found.append(
                Finding(
                    self.name,
                    "warning",
                    "smtp.url (MAILFLOW_SMTP_URL) está vacío: las respuestas quedarán en la "
                    "bandeja de salida sin enviarse",
                )
            )
        return found

    def _token(self, app: App) -> list[Finding]:
        """The OAuth2 settings are complete and the token endpoint grants a token now."""
        from mailflow.mail.oauth import TokenError

        try:
            tokens = app.mail_tokens
            if tokens is not None:
                tokens.token()
        except MailflowError as exc:
            return [Finding(self.name, "error", str(exc))]
        except TokenError as exc:
            o = app.settings.oauth2
            return [
                Finding(
                    self.name,
                    "error",
                    f"{exc}; compruebe oauth2.token_url, oauth2.client_id y el secreto en "
                    f"{o.client_secret_env} (o {o.refresh_token_env})",
                )
            ]
        return []


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine only (localhost, *.localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PublicUrl:
    """Documents carry QR links to institution.public_url: a loopback address reaches no one."""

    name = "public_url"
    description = "dirección pública de verificación de documentos"

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """A warning when documents are issued and institution.public_url is a loopback address
        (their QR codes would not open elsewhere).
        """
        url = app.settings.institution.public_url
        if not is_loopback_url(url) or not document_procedures(app):
            return []
        return [
            Finding(
                self.name,
                "warning",
                f"institution.public_url es {url}, una dirección local: los códigos QR de los "
                "documentos emitidos no abrirán fuera de este equipo; indique la dirección "
                "pública de la mesa de partes (p. ej. https://mesadepartes.example.gob.pe)",
            )
        ]


class MigracionesAddress:
    """Procedures issued automatically mail their oficios to Migraciones: its address is needed."""

    name = "migraciones_address"
    description = "dirección de Migraciones para los oficios emitidos automáticamente"

    def check(self, app: App, env: Mapping[str, str]) -> list[Finding]:
        """An error when a procedure delivers to Migraciones by email and migraciones.address is not
        usable.
        """
        from mailflow.documents.channel import migraciones_refusal

        refusal = migraciones_refusal(app.settings, app.catalogue)
        return [Finding(self.name, "error", refusal)] if refusal else []


CHECKS: tuple[StartupCheck, ...] = (
    SigningKey(),
    DatabaseReachable(),
    MailboxUrls(),
    MigracionesAddress(),
    PublicUrl(),
)
"""The checks `mailflow run` and `serve` apply, in order."""


def run_checks(
    app: App, env: Mapping[str, str] | None = None, checks: Sequence[StartupCheck] = CHECKS
) -> list[Finding]:
    """Every finding of `checks` (definitions are validated first: app.validate())."""
    env = os.environ if env is None else env
    app.validate()
    found: list[Finding] = []
    for check in checks:
        found.extend(check.check(app, env))
    return found


def verify(
    app: App, env: Mapping[str, str] | None = None, checks: Sequence[StartupCheck] = CHECKS
) -> list[Finding]:
    """Run the checks; raise StartupError listing every error, else return the warnings."""
    found = run_checks(app, env, checks)
    errors = [f for f in found if f.severity == "error"]
    if errors:
        raise StartupError(errors)
    return found
