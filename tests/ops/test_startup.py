"""`mailflow run`/`serve` refuse to start, naming what is missing, before any mail is touched."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.documents.pki import create_demo_pki
from mailflow.ops.runcmd import run
from mailflow.ops.startup import StartupError, verify
from tests.support.dovecot import DovecotAccount
from tests.support.mail_requests import request
from tests.support.mailservice import write_config
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
NO_KEY = {"pkcs12": None}  # a `signing` section: write_config then creates no demo keys


def mailflow(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "mailflow", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _refusal(config: Path, env: dict[str, str] | None = None) -> str:
    """The StartupError message for `config` (checks only; nothing is started)."""
    app = App(load_settings(config, env={}))
    with pytest.raises(StartupError) as info:
        verify(app, env or {})
    return str(info.value)


def test_no_signing_key_refuses_and_leaves_the_mail_on_the_server(
    tmp_path: Path,
    imap_account: DovecotAccount,
    smtp_sink: SmtpSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    imap_account.append([request(1)])
    config = write_config(tmp_path, imap_account.url(), smtp_sink.url, signing=NO_KEY)
    code = run(load_settings(config, env={}), once=True)
    err = capsys.readouterr().err
    assert code == 2
    assert "no se puede iniciar el servicio" in err
    assert "signing.pkcs12: no hay certificado de firma" in err
    assert "MAILFLOW_SIGNING_PKCS12" in err and "mailflow keys demo" in err
    assert "emiten documentos firmados" in err
    assert imap_account.count("INBOX") == 1  # not fetched, not moved
    assert not (tmp_path / "data" / "mailflow.db").exists()  # nothing created either


def test_signing_key_from_env_needs_its_password(tmp_path: Path) -> None:
    pki = create_demo_pki(tmp_path / "prod-keys")
    config = write_config(tmp_path, None, "smtp://127.0.0.1:25", signing=NO_KEY)
    env = {"MAILFLOW_SIGNING_PKCS12": str(pki.signer_p12)}
    settings = load_settings(config, env=env)
    assert settings.signing.pkcs12 == pki.signer_p12
    with pytest.raises(StartupError) as info:
        verify(App(settings), env)
    message = str(info.value)
    assert f"falta la contraseña del certificado {pki.signer_p12}" in message
    assert "MAILFLOW_SIGNING_PASSWORD" in message
    password = pki.signer_p12.with_name("signer-password.txt").read_text().strip()
    wrong = {**env, "MAILFLOW_SIGNING_PASSWORD": "incorrecta"}
    with pytest.raises(StartupError, match=r"no se pudo abrir .*contraseña correcta"):
        verify(App(settings), wrong)
    right = {**env, "MAILFLOW_SIGNING_PASSWORD": password}
    assert all(f.severity == "warning" for f in verify(App(settings), right))


def test_signing_key_file_that_does_not_exist(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None, signing={"pkcs12": "claves/institucion.p12"})
    message = _refusal(config, {"MAILFLOW_SIGNING_PASSWORD": "x"})
    assert f"signing.pkcs12: el archivo {tmp_path / 'claves' / 'institucion.p12'} no existe" in (
        message
    )


def test_unreachable_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    text = config.read_text().replace(
        "database_url: null", "database_url: postgresql://mailflow:secreta@127.0.0.1:1/mailflow"
    )
    config.write_text(text)
    message = _refusal(config)
    assert "database_url: no se puede conectar a postgresql+psycopg://mailflow:***@127.0.0.1:1" in (
        message
    )
    assert "MAILFLOW_DATABASE_URL" in message and "secreta" not in message


def test_sqlite_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "archivo"
    blocker.write_text("no es una carpeta")
    config = write_config(tmp_path, None, None)
    config.write_text(config.read_text().replace(str(tmp_path / "data"), str(blocker / "data")))
    message = _refusal(config)
    assert f"database_url: no se puede escribir en {blocker}" in message
    assert "MAILFLOW_DATA_DIR" in message


@pytest.mark.parametrize(
    ("imap_url", "smtp_url", "needle"),
    [
        ("imap://imap.example.org/INBOX", None, "imap.url: falta el usuario del buzón"),
        ("imap://u@imap.example.org/INBOX", None, "imap.url: falta la contraseña del buzón"),
        ("imap://u:p@imap.example.org:abc/INBOX", None, "imap.url: el puerto de 'imap.example"),
        ("pop3://u:p@mail.example.org/", None, "imap.url: el esquema 'pop3' no es válido"),
        ("imap://u:p@/INBOX", None, "imap.url: falta el servidor en la URL"),
        (None, "smtp://:25", "smtp.url: falta el servidor en la URL"),
        (None, "http://smtp.example.org", "smtp.url: el esquema 'http' no es válido"),
    ],
)
def test_malformed_mailbox_urls(
    tmp_path: Path, imap_url: str | None, smtp_url: str | None, needle: str
) -> None:
    config = write_config(tmp_path, imap_url, smtp_url)
    message = _refusal(config)
    assert needle in message
    assert "MAILFLOW_IMAP_URL" in message or "MAILFLOW_SMTP_URL" in message
    assert "u:p@" not in message  # credentials are never echoed


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "imap://imap.example.org/INBOX", "http://x", signing=NO_KEY)
    message = _refusal(config)
    assert message.count("\n  - ") == 3, message


def test_loopback_public_url_is_warned_at_start_and_by_health(
    tmp_path: Path, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, None, smtp_sink.url)
    with caplog.at_level(logging.WARNING, logger="mailflow.ops.runcmd"):
        assert run(load_settings(config, env={}), once=True) == 0
    assert any(
        "institution.public_url es http://127.0.0.1:8080" in r.message for r in caplog.records
    )
    result = mailflow("--config", str(config), "health", cwd=tmp_path, env={})
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any("códigos QR" in w for w in report["warnings"])
    assert report["signing"]["loaded"] and report["signing"]["days_left"] > 30


def test_serve_refuses_too(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None, signing=NO_KEY)
    result = mailflow("--config", str(config), "serve", cwd=tmp_path, env={})
    assert result.returncode == 2
    assert "signing.pkcs12: no hay certificado de firma" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_and_calendar_need_no_key_database_or_mailbox(tmp_path: Path) -> None:
    env = {"MAILFLOW_IMAP_URL": "imap://sin-usuario/INBOX", "MAILFLOW_DATA_DIR": str(tmp_path)}
    sample = ROOT / "samples" / "04_apelacion.eml"
    checked = mailflow("check", "--json", str(sample), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["tramite"] == "apelacion"
    due = mailflow(
        "calendar", "due", "--received", "2026-03-02T10:00", "--days", "5", cwd=tmp_path, env=env
    )
    assert due.returncode == 0 and due.stdout.strip() == "2026-03-09"
    assert list(tmp_path.iterdir()) == []  # no database, no keys, nothing written
