"""config.yaml loading: validation with the key's name, env overrides, path resolution."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.config import imap_credentials, load_settings
from mailflow.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_loads() -> None:
    settings = load_settings(ROOT / "config.yaml", env={})
    assert settings.calendar.cutoff is None  # Ley 31465: no office-hours cutoff by default
    assert settings.calendar.non_business_day_filing == "next_business_day"
    assert settings.calendar.default_office == "lima"
    assert {m.name for m in settings.mailboxes} == {
        "mesadepartes",
        "solicitantesrefugio",
        "refugiados",
    }
    assert settings.rules_dir == ROOT / "rules"
    assert settings.effective_database_url == f"sqlite:///{ROOT / 'data' / 'mailflow.db'}"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("sla:\n  due_soon_dayz: 3\n", "sla.due_soon_dayz: clave desconocida"),
        ("colour: red\n", "colour: clave desconocida"),
        ("sla:\n  subsanacion_days: 0\n", "sla.subsanacion_days"),
        ("calendar:\n  timezone: Mars/Olympus\n", "calendar.timezone"),
        ("calendar:\n  cutoff: las cinco\n", "calendar.cutoff"),
        ("calendar:\n  extra_non_working_days: [2026-02-30]\n", "calendar.extra_non_working_days"),
        ("imap:\n  after_store: delete\n", "imap.after_store"),
        ("- a\n- b\n", "debe contener un mapa"),
        ("sla: [1, 2\n", "YAML inválido"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text), env={})
    assert needle in str(err.value)
    assert str(tmp_path / "config.yaml") in str(err.value)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no existe"):
        load_settings(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="no existe"):
        load_settings(env={"MAILFLOW_CONFIG": str(tmp_path / "nope.yaml")})


def test_environment_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "data_dir: here\n")
    env = {
        "MAILFLOW_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/mf",
        "MAILFLOW_IMAP_URL": "imaps://mesa%40x.pe:s3cr%2Ft@mail.x.pe:993/Entrada",
        "MAILFLOW_SMTP_URL": "smtp+starttls://u:p@smtp.x.pe:587",
        "MAILFLOW_TRUST_ROOTS": "/etc/a.pem:rel/b.pem",
        "MAILFLOW_EXTRA_NON_WORKING_DAYS": "2026-12-24, 2026-12-31",
        "MAILFLOW_DATA_DIR": "/var/lib/mailflow",
    }
    s = load_settings(path, env=env)
    assert s.database_url == env["MAILFLOW_DATABASE_URL"]
    assert s.effective_database_url == env["MAILFLOW_DATABASE_URL"]
    assert s.smtp.url == env["MAILFLOW_SMTP_URL"]
    assert s.signatures.trust_roots == (Path("/etc/a.pem"), tmp_path / "rel" / "b.pem")
    assert s.calendar.extra_non_working_days == (dt.date(2026, 12, 24), dt.date(2026, 12, 31))
    assert s.data_dir == Path("/var/lib/mailflow")
    assert imap_credentials(s.imap.url or "") == (
        "mail.x.pe",
        993,
        True,
        "mesa@x.pe",
        "s3cr/t",
        "Entrada",
    )


def test_config_file_env_var_is_used(tmp_path: Path) -> None:
    path = _write(tmp_path, "sla:\n  due_soon_days: 5\n")
    assert load_settings(env={"MAILFLOW_CONFIG": str(path)}).sla.due_soon_days == 5


@pytest.mark.parametrize(
    ("var", "value"),
    [("MAILFLOW_SMTP_URL", "http://x"), ("MAILFLOW_IMAP_URL", "pop3://x")],
)
def test_bad_url_scheme_is_rejected(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings(_write(tmp_path, ""), env={var: value})


def test_bad_extra_day_from_env_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"calendar\.extra_non_working_days"):
        load_settings(_write(tmp_path, ""), env={"MAILFLOW_EXTRA_NON_WORKING_DAYS": "mañana"})
