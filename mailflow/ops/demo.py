"""`mailflow demo`: everything embedded (SQLite, inbound SMTP, captured mail, web desk, samples)."""

from __future__ import annotations

import datetime as dt
import re
import signal
import smtplib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sqlalchemy import func, select

from mailflow.app import App
from mailflow.config import Settings
from mailflow.ops.demo_requests import applicant_identity, demo_messages
from mailflow.ops.keys import keys_demo
from mailflow.store.models import InboxMessage, OutboxMessage, User
from mailflow.web.users import add_user

ACCOUNTS = (
    ("mesa", "Ana Quispe (mesa de partes)", "staff", "mesa-demo-2026"),
    ("jefa", "Rosa Huamán (jefatura)", "manager", "jefa-demo-2026"),
    ("admin", "Administrador", "admin", "admin-demo-2026"),
)


@dataclass(frozen=True)
class DemoPorts:
    """The TCP ports the demo actually uses: inbound SMTP and web."""

    smtp: int
    web: int


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """`preferred` if it is free, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no hay puertos libres")


DEMO_MIGRACIONES_DOMAIN = "migraciones.demo.localhost"
DEMO_REGISTRY = "registro_demo.csv"


def demo_settings(base: Settings, ports: DemoPorts) -> Settings:
    """The demo's settings: its own data folder, SQLite, inbound SMTP, mail captured to a folder."""
    data_dir = base.data_dir / "demo" if base.database_url is None else base.data_dir
    keys_dir = data_dir / "keys"
    ca, _ = applicant_identity(keys_dir)
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "outbox_dir": data_dir / "correo-saliente",
            "institution": base.institution.model_copy(
                update={"public_url": f"http://127.0.0.1:{ports.web}"}
            ),
            "inbound_smtp": base.inbound_smtp.model_copy(
                update={"enabled": True, "host": "127.0.0.1", "port": ports.smtp}
            ),
            "smtp": base.smtp.model_copy(update={"url": None}),
            "imap": base.imap.model_copy(update={"url": None}),
            "signatures": base.signatures.model_copy(
                update={"trust_roots": (*base.signatures.trust_roots, ca.cert_path)}
            ),
            "web": base.web.model_copy(update={"host": "127.0.0.1", "port": ports.web}),
            # oficios to Migraciones are captured in the outbox folder like every other mail
            "migraciones": base.migraciones.model_copy(
                update={"address": f"migraciones@{DEMO_MIGRACIONES_DOMAIN}"}
            ),
        }
    )


def write_demo_config(settings: Settings) -> Path:
    """Write the demo's settings to <demo data_dir>/config.yaml and return its path.

    Every path in it is absolute, so `MAILFLOW_CONFIG=<that file> mailflow health` (or users,
    registry) works on the demo's database from any folder.
    """
    import yaml

    data = settings.model_dump(mode="json", exclude_none=True)
    path = settings.data_dir / "config.yaml"
    header = (
        "# Configuración escrita por `mailflow demo` (rutas absolutas).\n"
        f"# Úsela con: export MAILFLOW_CONFIG={path}\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    tmp.replace(path)
    return path


def ensure_accounts(app: App) -> None:
    """Create the demo staff accounts of ACCOUNTS that do not exist yet in `app`'s database
    (idempotent; existing accounts are left unchanged).
    """
    with app.database.session() as session:
        existing = set(session.scalars(select(User.username)))
        for username, name, role, password in ACCOUNTS:
            if username not in existing:
                add_user(session, username, name, role, password)


def send_samples(settings: Settings, messages: list[bytes]) -> None:
    """Send each raw message to the running inbound SMTP server (settings.inbound_smtp host/port,
    CRLF line endings, 30 s timeout), addressed to the mailbox it names. Raises smtplib/OSError
    when the server refuses or is unreachable.
    """
    cfg = settings.inbound_smtp
    with smtplib.SMTP(cfg.host, cfg.port, timeout=30) as smtp:
        for raw in messages:
            wire = re.sub(rb"\r?\n", b"\r\n", raw)  # SMTP wants CRLF line endings
            smtp.sendmail("solicitante@example.org", [_recipient(settings, raw)], wire)


def _recipient(settings: Settings, raw: bytes) -> str:
    head = raw.split(b"\n\n", 1)[0].decode("latin-1").lower()
    for box in settings.mailboxes:
        if box.address.lower() in head:
            return box.address
    return settings.mailboxes[0].address if settings.mailboxes else "mesadepartes@localhost"


def wait_until_drained(app: App, expected: int, timeout: float) -> tuple[int, int]:
    """Wait until `expected` inbox rows are processed and the outbox is empty."""
    deadline = time.monotonic() + timeout
    done = pending = 0
    while time.monotonic() < deadline:
        with app.database.session(readonly=True) as s:
            done = (
                s.scalar(
                    select(func.count())
                    .select_from(InboxMessage)
                    .where(InboxMessage.status.in_(("done", "set_aside", "duplicate")))
                )
                or 0
            )
            pending = (
                s.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_(("pending", "sending")))
                )
                or 0
            )
        if done >= expected and pending == 0:
            break
        time.sleep(0.2)
    return done, pending


def run_demo(base: Settings, *, smtp_port: int, web_port: int, exit_after_samples: bool) -> int:
    """Start every part, send the samples through SMTP, print where to look; Ctrl-C stops."""
    from mailflow.ops.runcmd import prepare
    from mailflow.registry.command import import_file
    from mailflow.runners.service import run_forever
    from mailflow.web.server import WebServer

    ports = DemoPorts(free_port(smtp_port), free_port(web_port))
    settings = demo_settings(base, ports)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config_path = write_demo_config(settings)
    print(keys_demo(settings))
    app = prepare(settings)
    ensure_accounts(app)
    from mailflow.policy_files import samples_dir

    registry = samples_dir() / DEMO_REGISTRY
    if registry.is_file():  # the registered refugees of samples 06 and 07: oficios go straight
        for line in import_file(app.database, registry, ["Condición=status"]).lines[-1:]:
            print(f"Registro de demostración: {line}")
    stop = threading.Event()
    service = threading.Thread(target=run_forever, args=(app, stop), name="service", daemon=True)
    service.start()
    web = WebServer(app)
    web.start()
    _wait_for_port(settings.inbound_smtp.host, ports.smtp)
    with app.database.session(readonly=True) as s:
        before = s.scalar(select(func.count()).select_from(InboxMessage)) or 0
    messages = list(demo_messages(settings, samples_dir(), settings.data_dir / "keys"))
    send_samples(settings, messages)
    done, pending = wait_until_drained(app, before + len(messages), timeout=120)
    url = settings.institution.public_url
    print(f"\nmailflow demo — {dt.datetime.now():%Y-%m-%d %H:%M}")
    print(f"  Mesa de partes (web):   {url}/login")
    print(f"  SMTP de entrada:        {settings.inbound_smtp.host}:{ports.smtp}")
    print(f"  Correo saliente:        {settings.outbox_dir}")
    print(f"  Base de datos:          {settings.effective_database_url}")
    print(f"  Solicitudes de ejemplo: {len(messages)} enviadas, {done} procesadas en total")
    print("  Cuentas de demostración:")
    for username, name, role, password in ACCOUNTS:
        print(f"    {username:6} / {password:16} {role:8} {name}")
    print("  Para usar los demás comandos (health, users, registry) sobre esta demostración:")
    print(f"    export MAILFLOW_CONFIG={config_path}")
    code = 0 if pending == 0 and done >= before + len(messages) else 1
    if not exit_after_samples:
        print("\nCtrl-C para terminar.")
        _wait_for_signal(stop)
    stop.set()
    web.stop()
    service.join(timeout=30)
    app.database.dispose()
    return code


def _wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"el servidor SMTP de entrada no responde en {host}:{port}")


def _wait_for_signal(stop: threading.Event) -> None:
    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        stop.wait(1)
