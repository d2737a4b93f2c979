"""Write tests/fixtures/db_0002.sql: rows of a real run at schema 0002, for the upgrade test.

Regenerate only when the schema the fixture stands for changes (`python -m tests.support.db_fixture`
at a commit whose newest migration is that schema). It runs the service once over the shipped
samples and a few requests (cases, documents, timers, events, outbox, a staff account) and
dumps every data row as SQLite INSERT statements; alembic_version is left out on purpose.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from pathlib import Path

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.ops.demo_requests import applicant_identity, demo_messages
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import run_once
from mailflow.web.users import add_user
from tests.support.mail_requests import request
from tests.support.mailservice import write_config

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "db_0002.sql"
REVISION = "0002"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = write_config(base, None, None)
        settings = load_settings(config, env={})
        keys = base / "data" / "keys"
        ca, _ = applicant_identity(keys)
        signatures = settings.signatures.model_copy(update={"trust_roots": (ca.cert_path,)})
        settings = settings.model_copy(
            update={"outbox_dir": base / "enviados", "signatures": signatures}
        )
        app = App(settings)
        app.database.migrate(REVISION)
        now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
        raws = list(demo_messages(settings, ROOT / "samples", keys))  # incl. signed recursos
        raws += [request(i) for i in range(6)]
        with app.database.session() as s:
            for raw in raws:
                store_raw(s, raw, mailbox="mesadepartes", source="smtp", now=now)
            add_user(s, "mesa", "Ana Quispe", "staff", "una-clave-larga-2026")
        run_once(app, lambda: now)
        app.database.dispose()
        db = Path(str(app.database.url.database))
        conn = sqlite3.connect(db)
        lines = [
            line
            for line in conn.iterdump()
            if line.startswith("INSERT INTO") and '"alembic_version"' not in line
        ]
        conn.close()
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines)} filas")


if __name__ == "__main__":
    main()
