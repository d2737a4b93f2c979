"""Whether the configured database exists, checked without creating it (for read-only commands)."""

from __future__ import annotations

from pathlib import Path

from mailflow.config import Settings
from mailflow.errors import ConfigError
from mailflow.store.db import parse_url


def missing_database(settings: Settings) -> str | None:
    """A message when the configured SQLite file does not exist, else None.

    Nothing is created: a read (health, users list, registry) must not leave an empty
    database behind. PostgreSQL is not looked at here (a missing database fails to connect).
    """
    url = parse_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(str(url.database))
    if path.exists():
        return None
    demo = settings.data_dir / "demo" / "config.yaml"
    hint = (
        f"; para usar la demostración: export MAILFLOW_CONFIG={demo}"
        if demo.exists()
        else "; indique la configuración con --config o MAILFLOW_CONFIG, o cree la base con "
        "`mailflow run --once`"
    )
    return f"no existe la base de datos {path}{hint}"


def require_existing(settings: Settings) -> None:
    """Raise ConfigError with missing_database's message when the database does not exist."""
    message = missing_database(settings)
    if message:
        raise ConfigError(message)
