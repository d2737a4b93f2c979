"""Composing and sending replies alone: compose (and compose_fast) per reply, then
`drain_outbox` of N queued replies to a real SMTP sink (aiosmtpd) with the sent-journal.

Usage: .venv/bin/python bench/sender_bench.py [-n 1000]
Prints ms per composed reply and the sender's messages/s (claim → SMTP → journal → record).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.config import Settings  # noqa: E402
from mailflow.mail import outgoing  # noqa: E402
from mailflow.mail.outgoing import Reply, Thread  # noqa: E402
from mailflow.runners.journal import SentJournal  # noqa: E402
from mailflow.runners.sender import drain_outbox  # noqa: E402
from mailflow.store.db import Database  # noqa: E402
from mailflow.store.models import OutboxMessage  # noqa: E402
from tests.support.dovecot import free_port  # noqa: E402
from tests.support.smtp_sink import SmtpSink, serving  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
NAMES = ["Juan Pérez", "María Ñúñez", "Ana López Quispe", "Luis Huamán"]
TEXT = (
    "Estimado(a) {name}:\n\nHemos recibido su solicitud de Actualización de datos, registrada "
    "con el número {number}.\nLe responderemos dentro del plazo.\n\nAtentamente,\nMesa de Partes\n"
)


def _reply(i: int) -> Reply:
    number, name = f"EXP-2026-{i:06d}", NAMES[i % len(NAMES)]
    return Reply(
        case_number=number,
        tramite_name="Actualización de datos",
        template="acuse_recibo",
        text=TEXT.format(name=name, number=number),
        from_addr="mesadepartes@cepr.example",
        from_name="Mesa de Partes Virtual - CEPR",
        to_addr=f"persona{i}@example.org",
        to_name=name,
        dedupe_key=f"{i}:1:acuse_recibo",
        domain="cepr.example",
        thread=Thread(f"req{i}@example.org", (f"req{i}@example.org",)),
        nonce=os.urandom(6).hex(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    n = parser.parse_args().n
    replies = [_reply(i) for i in range(n)]
    started = time.perf_counter()
    raws = [outgoing.compose(r, NOW).as_bytes() for r in replies]
    print(f"compose + as_bytes: {(time.perf_counter() - started) / n * 1e3:.3f} ms/respuesta")
    fast = getattr(outgoing, "compose_fast", None)
    if fast is not None:
        started = time.perf_counter()
        raws = [fast(r, NOW).as_bytes() for r in replies]
        print(f"compose_fast:       {(time.perf_counter() - started) / n * 1e3:.3f} ms/respuesta")
    with tempfile.TemporaryDirectory(prefix="mailflow-sender-") as tmp:
        db = Database(f"sqlite:///{tmp}/mailflow.db")
        db.migrate()
        with db.session() as s:
            for i, (reply, raw) in enumerate(zip(replies, raws, strict=True)):
                s.add(
                    OutboxMessage(
                        kind="acuse_recibo" if i % 2 else "informativo",
                        dedupe_key=reply.dedupe_key,
                        message_id=f"m{i}@cepr.example",
                        from_addr=reply.from_addr,
                        to_addr=reply.to_addr,
                        subject=f"Respuesta {i}",
                        raw=raw,
                        created_at=NOW,
                        next_attempt_at=NOW,
                    )
                )
        with serving(SmtpSink(port=free_port())) as sink:
            settings = Settings.model_validate({"smtp": {"url": sink.url}})
            journal = SentJournal(Path(tmp) / "sent.journal")
            started = time.perf_counter()
            stats = drain_outbox(settings, db, lambda: NOW, journal=journal)
            took = time.perf_counter() - started
            assert stats.sent == n == len(sink.snapshot()), (stats, len(sink.snapshot()))
        print(f"drain_outbox: {n} en {took:.2f} s = {n / took:.0f} msg/s")
        db.dispose()


if __name__ == "__main__":
    main()
