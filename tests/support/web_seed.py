"""Seed data and app builders for the staff desk tests (accounts, messages, cases)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailflow.app import App
from mailflow.config import Settings, load_settings
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import InboxMessage
from mailflow.web import create_app
from mailflow.web.users import add_user

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "clave-segura-123"
NOW = dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in Lima

UNCLASSIFIED = b"""From: Maria Perez <maria@example.org>
To: mesadepartes@cepr.mailflow.localhost
Subject: consulta urgente
Message-ID: <u1@example.org>
Date: Mon, 09 Mar 2026 09:00:00 -0500
Content-Type: text/plain; charset=utf-8

Buenos dias, quiero actualizar mis datos.
Nombres y apellidos: Maria Perez Gomez
Nacionalidad: venezolana
Documento de identidad: 12345678
Telefono: 987654321
"""

SPAM = b"""From: promo@example.net
To: mesadepartes@cepr.mailflow.localhost
Subject: oferta imperdible
Message-ID: <s1@example.net>
Content-Type: text/html; charset=utf-8

<p>Compre ahora <script>alert(1)</script></p>
"""


def settings_for(tmp: Path) -> Settings:
    base = load_settings(ROOT / "config.yaml", env={})
    return base.model_copy(update={"data_dir": tmp, "outbox_dir": tmp / "outbox"})


def build(settings: Settings, db: Database, clock: list[dt.datetime] | None = None) -> object:
    web = create_app(settings, db)
    if clock is not None:
        web.state.clock = lambda: clock[0]
    return web


def seed_users(db: Database) -> None:
    with db.session() as session:
        add_user(session, "ana", "Ana Quispe", "staff", PASSWORD)
        add_user(session, "jefa", "Rosa Salas", "manager", PASSWORD)
        add_user(session, "admin", "Luis Admin", "admin", PASSWORD)


def store(db: Database, app: App, raw: bytes, uid: int, process: bool = True) -> int:
    with db.session() as session:
        row = InboxMessage(
            mailbox="mesadepartes",
            uidvalidity=1,
            uid=uid,
            message_id=f"<{uid}@seed>",
            sha256=f"{uid:064d}",
            raw=raw,
            size=len(raw),
            source="file",
            arrived_at=NOW,
            status="new",
        )
        session.add(row)
        session.flush()
        if process:
            process_inbox_message(app, session, row, NOW)
        return row.id
