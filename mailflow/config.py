"""Typed, validated settings loaded from config.yaml and MAILFLOW_* environment overrides.

The settings classes and `load_settings` live here; reading the file and applying the
environment overrides is mailflow.ops.config_sources.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mailflow.errors import ConfigError
from mailflow.ops.config_sources import DEFAULT_CONFIG as DEFAULT_CONFIG  # importable from here
from mailflow.ops.config_sources import describe_invalid, env_overrides, read_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Institution(_Strict):
    """The institution named in replies and documents: names, mail domain, public URL (QR links),
    city, oficio number prefix and the responsible authority (TUO Ley 27444, art. 4.3).
    """

    name: str = "Comisión Especial para los Refugiados"
    short_name: str = "CEPR"
    ministry: str = "Ministerio de Relaciones Exteriores"
    domain: str = "mailflow.localhost"
    public_url: str = "http://127.0.0.1:8080"
    city: str = "Lima"
    oficio_prefix: str = "CEPR/MRE"
    # The responsible authority printed on documents (TUO Ley 27444, art. 4.3: an act produced
    # by an automated system names the authority responsible for it).
    authority_name: str = "Secretaría Técnica"
    authority_position: str = "Secretario(a) Técnico(a) de la Comisión Especial para los Refugiados"


class Mailbox(_Strict):
    """One mailbox of the front desk: its address and the IMAP folder it is read from."""

    name: str
    address: str
    folder: str = "INBOX"
    office: str | None = None  # receiving unit (rules/calendar.yaml offices); None: default


MailAuth = Literal["password", "xoauth2"]


class ImapSettings(_Strict):
    """Inbound IMAP mailbox: URL (or MAILFLOW_IMAP_URL), login kind, where stored mail goes (folder,
    move/copy+expunge/flag), batch size, IDLE or polling every poll_seconds, reconnect back-off
    cap (seconds).
    """

    url: str | None = None
    auth: MailAuth = "password"
    processed_folder: str = "Procesados"
    after_store: Literal["move", "copy_expunge", "flag"] = "move"
    batch_size: int = Field(200, ge=1, le=5000)
    idle: bool = True
    poll_seconds: float = Field(30.0, gt=0)
    reconnect_max_seconds: float = Field(60.0, gt=0)


class SmtpSettings(_Strict):
    """Outbound SMTP relay: URL (or MAILFLOW_SMTP_URL), login kind, timeout (seconds), attempts per
    message, retry base (seconds, exponential) and how long connection failures are retried
    (hours).
    """

    url: str | None = None
    auth: MailAuth = "password"
    timeout_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(12, ge=1)
    retry_base_seconds: float = Field(5.0, gt=0)
    retry_for_hours: float = Field(120.0, gt=0)  # connection-level failures: keep trying


class InboundSmtpSettings(_Strict):
    """The built-in SMTP/LMTP receiver (aiosmtpd): whether it runs, host, port, LMTP instead of
    SMTP, and the largest message accepted (bytes).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    lmtp: bool = False
    max_message_bytes: int = Field(40 * 1024 * 1024, ge=1024)


class CalendarSettings(_Strict):
    """Días hábiles. No cutoff by default (Ley N° 31465; Indecopi Res. 0518-2024/SEL-INDECOPI);
    `cutoff` only for an institution under a special regime, `cutoff_source` naming its basis."""

    country: str = "PE"
    timezone: str = "America/Lima"
    cutoff: dt.time | None = None
    cutoff_source: str = ""
    non_business_day_filing: Literal["next_business_day", "term_from_next_business_day"] = (
        "next_business_day"
    )
    default_office: str = Field("lima", min_length=1)
    extra_non_working_days: tuple[dt.date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"zona horaria desconocida: {value!r}") from exc
        return value


class SlaSettings(_Strict):
    """Deadline settings: due_soon_days (días hábiles before the due date a case counts as due
    soon), subsanacion_days (días hábiles to correct an observation), reminder_days_before, and
    the sweep interval (seconds).
    """

    due_soon_days: int = Field(3, ge=0)
    subsanacion_days: int = Field(2, ge=1)
    reminder_days_before: int = Field(2, ge=0)
    sweep_seconds: float = Field(60.0, gt=0)


class OAuth2Settings(_Strict):
    """OAuth2 client for XOAUTH2 mailbox logins (imap.auth / smtp.auth = xoauth2)."""

    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    client_secret_env: str = "MAILFLOW_OAUTH2_CLIENT_SECRET"
    refresh_token_env: str = "MAILFLOW_OAUTH2_REFRESH_TOKEN"


class ClassificationSettings(_Strict):
    """Classifier thresholds: the minimum score to accept a procedure and the margin under which two
    procedures tie (fractions 0–1).
    """

    threshold: float = Field(0.80, gt=0, le=1)
    tie_margin: float = Field(0.04, ge=0, le=1)


class SignatureSettings(_Strict):
    """Trust roots (PEM/DER files) that incoming digital signatures must chain to."""

    trust_roots: tuple[Path, ...] = ()


class SigningSettings(_Strict):
    """Our signing key for issued documents: the PKCS #12 file and the environment variable holding
    its password.
    """

    pkcs12: Path | None = None
    password_env: str = "MAILFLOW_SIGNING_PASSWORD"


class LimitSettings(_Strict):
    """Per-message limits: attachment size (bytes), MIME parts, PDF pages read, PDF seconds, text
    characters kept, CPU seconds to decide (then it goes to staff).
    """

    max_attachment_bytes: int = Field(15 * 1024 * 1024, ge=1024)
    max_parts: int = Field(200, ge=1)
    max_pdf_pages: int = Field(20, ge=1)
    pdf_seconds: float = Field(5.0, gt=0)
    max_text_chars: int = Field(200_000, ge=1000)
    decide_cpu_seconds: float = Field(8.0, ge=1, le=600)  # per message, then it goes to staff


class ReplySettings(_Strict):
    """Automatic replies: at most daily_cap_per_address per sender address and day; review_days
    (días hábiles) promised when staff review a request.
    """

    daily_cap_per_address: int = Field(10, ge=1)
    review_days: int = Field(2, ge=1, le=30)  # días hábiles promised for staff review


class MigracionesSettings(_Strict):
    """Migraciones, where oficios go (delivered there); its own mail is never acknowledged,
    only joined to the case it names."""

    address: str | None = None
    name: str = "Superintendencia Nacional de Migraciones"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        if value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
            raise ValueError(f"dirección de correo inválida: {value!r}")
        return value


class SecuritySettings(_Strict):
    """Sender authentication: the authserv-ids (RFC 8601) of our own receiving servers whose
    Authentication-Results headers are trusted; empty trusts none."""

    authserv_id: tuple[str, ...] = ()


class WebSettings(_Strict):
    """The web desk: whether it runs, host, port, the secret key's environment variable, request and
    upload size limits (bytes) and the failed-login limits per address and per account.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    secret_key_env: str = "MAILFLOW_SECRET_KEY"
    # request bodies larger than this are refused with 413 before they are read (bytes)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # the same for file uploads (registry import: a 20 MB sheet plus the form around it)
    max_upload_bytes: int = Field(21 * 1024 * 1024, ge=1024)
    # failed logins allowed per client address / per username within the sliding window
    login_failures_per_address: int = Field(20, ge=1)
    login_failures_per_account: int = Field(10, ge=1)
    login_window_seconds: float = Field(900.0, gt=0)


class Settings(_Strict):
    """The whole configuration of one mailflow installation."""

    institution: Institution = Institution()
    data_dir: Path = Path("data")
    database_url: str | None = None
    rules_dir: Path = Path("rules")
    state_machines_dir: Path = Path("state_machines")
    templates_dir: Path = Path("templates")
    mailboxes: tuple[Mailbox, ...] = ()
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    oauth2: OAuth2Settings = OAuth2Settings()
    inbound_smtp: InboundSmtpSettings = InboundSmtpSettings()
    calendar: CalendarSettings = CalendarSettings()
    sla: SlaSettings = SlaSettings()
    classification: ClassificationSettings = ClassificationSettings()
    signatures: SignatureSettings = SignatureSettings()
    signing: SigningSettings = SigningSettings()
    limits: LimitSettings = LimitSettings()
    replies: ReplySettings = ReplySettings()
    migraciones: MigracionesSettings = MigracionesSettings()
    security: SecuritySettings = SecuritySettings()
    web: WebSettings = WebSettings()
    outbox_dir: Path | None = None

    @property
    def effective_database_url(self) -> str:
        """`database_url` when set, else the SQLite file <data_dir>/mailflow.db (as an SQLAlchemy
        URL string).
        """
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mailflow.db'}"


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read config.yaml (or MAILFLOW_CONFIG), apply env overrides, validate, resolve paths.

    Relative paths resolve against the config file's folder (the current folder when there is
    no config file). rules_dir, state_machines_dir and templates_dir default to the policy
    shipped with the package when the configuration does not name them.
    """
    env = os.environ if env is None else env
    config_path, data = read_config(path, env)
    data = env_overrides(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc, str(config_path))) from exc
    return _resolve_paths(settings, config_path.resolve().parent)


def _policy_dir(settings: Settings, key: str, rel: Callable[[Path], Path]) -> Path:
    """A policy folder named in the configuration, else the packaged default policy."""
    if key in settings.model_fields_set:
        return rel(getattr(settings, key))
    from mailflow.policy_files import default_policy_dir

    return default_policy_dir(key.removesuffix("_dir"))


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def rel(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    updates: dict[str, Any] = {
        "data_dir": rel(settings.data_dir),
        "rules_dir": _policy_dir(settings, "rules_dir", rel),
        "state_machines_dir": _policy_dir(settings, "state_machines_dir", rel),
        "templates_dir": _policy_dir(settings, "templates_dir", rel),
        "signatures": settings.signatures.model_copy(
            update={"trust_roots": tuple(rel(p) for p in settings.signatures.trust_roots)}
        ),
    }
    if settings.outbox_dir is not None:
        updates["outbox_dir"] = rel(settings.outbox_dir)
    if settings.signing.pkcs12 is not None:
        updates["signing"] = settings.signing.model_copy(
            update={"pkcs12": rel(settings.signing.pkcs12)}
        )
    return settings.model_copy(update=updates)


def imap_credentials(url: str) -> tuple[str, int, bool, str, str, str]:
    """Split an imap(s):// URL into host, port, ssl, user, password and folder."""
    parts = urlsplit(url)
    ssl = parts.scheme == "imaps"
    port = parts.port or (993 if ssl else 143)
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return (
        parts.hostname or "localhost",
        port,
        ssl,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        folder,
    )
