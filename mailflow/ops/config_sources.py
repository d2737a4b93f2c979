"""Where settings come from: the YAML configuration file and MAILFLOW_* environment overrides.

mailflow.config validates what this returns into `Settings` (and re-exports DEFAULT_CONFIG).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from mailflow.errors import ConfigError

DEFAULT_CONFIG = "config.yaml"


class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text so validation can name the key."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_config(path: str | Path | None, env: Mapping[str, str]) -> tuple[Path, dict[str, Any]]:
    """The configuration file to use (`path`, else MAILFLOW_CONFIG in `env`, else config.yaml)
    and its mapping ({} when the default file does not exist); ConfigError when a named file
    is missing or the file is unreadable, not YAML or not a mapping."""
    explicit = path is not None or bool(env.get("MAILFLOW_CONFIG"))
    config_path = Path(path or env.get("MAILFLOW_CONFIG") or DEFAULT_CONFIG)
    data: Any = {}
    if config_path.exists():
        try:
            data = yaml.load(config_path.read_text(encoding="utf-8"), Loader=_Loader) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: YAML inválido: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: no se pudo leer: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{config_path}: el archivo debe contener un mapa de claves")
    elif explicit:
        raise ConfigError(f"{config_path}: el archivo de configuración no existe")
    return config_path, data


_ENV_URL_SCHEMES = {
    "MAILFLOW_IMAP_URL": ("imap", "imaps"),
    "MAILFLOW_SMTP_URL": ("smtp", "smtps", "smtp+starttls"),
}


_ENV_OAUTH2 = {  # XOAUTH2 mailboxes configured by environment alone (secrets: see mailflow.mail.oauth)
    "MAILFLOW_IMAP_AUTH": ("imap", "auth"),
    "MAILFLOW_SMTP_AUTH": ("smtp", "auth"),
    "MAILFLOW_OAUTH2_TOKEN_URL": ("oauth2", "token_url"),
    "MAILFLOW_OAUTH2_CLIENT_ID": ("oauth2", "client_id"),
    "MAILFLOW_OAUTH2_SCOPE": ("oauth2", "scope"),
}


def _check_url(var: str, value: str) -> str:
    scheme = urlsplit(value).scheme
    allowed = _ENV_URL_SCHEMES[var]
    if scheme not in allowed:
        raise ConfigError(f"{var}: el esquema {scheme!r} no es válido; use {', '.join(allowed)}")
    return value


def env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the configuration mapping `data` with the MAILFLOW_* variables of `env` applied
    (sections copied, not changed in place); ConfigError on a bad URL scheme or a key that must
    be a section and is not."""
    out = dict(data)

    def section(name: str) -> dict[str, Any]:
        current = out.get(name) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"config: la clave {name!r} debe ser una sección (mapa)")
        out[name] = dict(current)
        return out[name]

    if env.get("MAILFLOW_DATABASE_URL"):
        out["database_url"] = env["MAILFLOW_DATABASE_URL"]
    if env.get("MAILFLOW_DATA_DIR"):
        out["data_dir"] = env["MAILFLOW_DATA_DIR"]
    if env.get("MAILFLOW_IMAP_URL"):
        section("imap")["url"] = _check_url("MAILFLOW_IMAP_URL", env["MAILFLOW_IMAP_URL"])
    if env.get("MAILFLOW_SMTP_URL"):
        section("smtp")["url"] = _check_url("MAILFLOW_SMTP_URL", env["MAILFLOW_SMTP_URL"])
    for var, (name, key) in _ENV_OAUTH2.items():
        if env.get(var):
            section(name)[key] = env[var]
    if env.get("MAILFLOW_SIGNING_PKCS12"):
        section("signing")["pkcs12"] = env["MAILFLOW_SIGNING_PKCS12"]
    if env.get("MAILFLOW_TRUST_ROOTS"):
        paths = [p for p in env["MAILFLOW_TRUST_ROOTS"].split(":") if p]
        section("signatures")["trust_roots"] = paths
    if env.get("MAILFLOW_MIGRACIONES_ADDRESS"):
        section("migraciones")["address"] = env["MAILFLOW_MIGRACIONES_ADDRESS"].strip()
    if env.get("MAILFLOW_EXTRA_NON_WORKING_DAYS"):
        days = [d.strip() for d in env["MAILFLOW_EXTRA_NON_WORKING_DAYS"].split(",") if d.strip()]
        section("calendar")["extra_non_working_days"] = days
    return out


def describe_invalid(exc: ValidationError, source: str) -> str:
    """The Spanish message for a failed validation of the file `source`: one line per problem."""
    lines = [f"{source}: configuración inválida"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(raíz)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {where}: clave desconocida")
        else:
            lines.append(f"  - {where}: {err['msg']} (valor: {err.get('input')!r})")
    return "\n".join(lines)
