"""End to end over real Dovecot + SMTP: every message from a person in a mixed mailbox gets exactly
one first answer, automatic mail (header-less out-of-office in three languages, non-standard
bounces, field case 08) gets none, and SIGKILLs during the run send nothing twice."""

from __future__ import annotations

import datetime as dt
import random
import signal
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import func, select

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.service import run_once
from mailflow.store.models import InboxMessage, OutboxMessage
from tests.support.dovecot import DovecotAccount
from tests.support.mail_requests import DOMAIN, request
from tests.support.mailservice import replies_per_request, start_service, write_config
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
FIELD_CASE_08 = ROOT / "tests/fixtures/mail/auto_13_fuera_oficina_sin_cabeceras.eml"
DATE = format_datetime(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
OUT_OF_OFFICE = (
    ("RE: Observación", "Gracias por su mensaje. Me encuentro fuera de la oficina hasta el lunes."),
    ("RE: Observation", "I am currently out of the office with limited access to email."),
    ("RE: Observação", "Obrigado. Estou fora do escritório até segunda-feira."),
)
PERSON_TOPICS = (
    ("Hola", "Buenos días, necesito ayuda con un documento, ¿a quién me dirijo?"),
    ("Solicitud de refugio", "Quiero solicitar refugio para mi familia."),
    ("Consulta", "¿Cuál es el horario de atención?"),
)


def _person(i: int) -> bytes:
    """A person's message the catalogue does not classify (review) or handles elsewhere."""
    subject, body = PERSON_TOPICS[i % len(PERSON_TOPICS)]
    msg = EmailMessage()
    msg["From"] = f"Vecina {i} <vecina{i}@example.net>"
    msg["To"] = f"mesadepartes@{DOMAIN}"
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<persona-otra{i}@example.net>"
    msg.set_content(body)
    return bytes(msg)


def _out_of_office(i: int) -> bytes:
    subject, body = OUT_OF_OFFICE[i % len(OUT_OF_OFFICE)]
    ours = f"<mf.exp-2026-{i + 1:06d}.c638e8fab3e9aeb5e04a@{DOMAIN}>"
    msg = EmailMessage()
    msg["From"] = f"ausente{i}@example.org"
    msg["To"] = f"refugiados@{DOMAIN}"
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<ooo{i}@example.org>"
    msg["In-Reply-To"] = ours
    msg["References"] = ours
    msg.set_content(body)
    return bytes(msg)


def _odd_bounce(i: int) -> bytes:
    """Bounces without multipart/report, in several languages and shapes."""
    shapes = (
        ("Notification", "systeme@mx.exemple.fr",
         "Votre message n'a pas pu être remis au destinataire (non remis)."),
        ("Aviso", "avisos@correo.gob.pe",
         "El mensaje no se pudo entregar.\n\nMessage-ID: <mf.exp-2026-000009.aa@" + DOMAIN + ">"),
        ("Mail Delivery Warning", "gateway@example.com", "Delivery to the following recipient has been delayed."),
        ("Aviso", "<Postmaster\\@mx.example.org@mx.example.org>", "Message could not be delivered."),
    )  # fmt: skip
    subject, sender, body = shapes[i % len(shapes)]
    head = f"From: {sender}\r\n" if sender.startswith("<") else f"From: Sistema <{sender}>\r\n"
    return (
        head + f"To: mesadepartes@{DOMAIN}\r\nSubject: {subject}\r\nDate: {DATE}\r\n"
        f"Message-ID: <rebote{i}@mx.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "\r\n" + body.replace("\n", "\r\n") + "\r\n"
    ).encode()


def _noreply(i: int) -> bytes:
    return (
        f"From: Banco <noreply@banco{i}.pe>\r\nTo: mesadepartes@{DOMAIN}\r\n"
        f"Subject: Actualización de datos\r\nDate: {DATE}\r\nMessage-ID: <nr{i}@banco.pe>\r\n\r\n"
        "Su clave fue actualizada.\r\n"
    ).encode()


def _mixed(n_people: int, n_auto: int) -> tuple[list[bytes], set[str]]:
    people = [request(i) for i in range(n_people)] + [_person(i) for i in range(n_people // 3)]
    automatic = [FIELD_CASE_08.read_bytes()]
    for i in range(n_auto):
        automatic += [_out_of_office(i), _odd_bounce(i), _noreply(i)]
    ids = {
        line.split(b":", 1)[1].strip().decode()
        for raw in people
        for line in raw.split(b"\n")
        if line.lower().startswith(b"message-id:")
    }
    raws = people + automatic
    random.Random(10).shuffle(raws)
    return raws, ids


def _app(config: Path) -> App:
    app = App(load_settings(config, env={}))
    app.database.migrate()
    return app


def _assert_one_answer_each(app: App, sink: SmtpSink, people: set[str], total: int) -> None:
    replies = replies_per_request(sink)
    assert {k: v for k, v in replies.items() if v != 1} == {}  # nothing answered twice
    assert set(replies) == people  # every person answered; automatic mail got nothing
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage).where(InboxMessage.status != "duplicate")).all()
        assert len(rows) == total
        for row in rows:
            assert row.status == "done", (row.id, row.status, row.last_error)
            if f"<{(row.message_id or '').strip('<>')}>" not in people:
                assert row.disposition == "ignore", (row.message_id, row.disposition)
        pending = s.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status != "sent")
        )
    assert pending == 0


def test_mixed_mailbox_every_person_answered_once_no_machine_answered(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    raws, people = _mixed(24, 4)
    imap_account.append(raws)
    app = _app(write_config(tmp_path, imap_account.url(), smtp_sink.url))
    stats = run_once(app)
    _assert_one_answer_each(app, smtp_sink, people, len(raws))
    assert stats.errors == [] and stats.sent == len(people) == 32
    with app.database.session(readonly=True) as s:
        kinds = set(s.scalars(select(OutboxMessage.kind)).all())
    assert {"observacion", "informativo", "acuse_registro", "otro_canal"} <= kinds
    assert imap_account.count("INBOX") == 0


def test_sigkill_during_a_mixed_run_sends_nothing_twice(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    raws, people = _mixed(300, 12)
    imap_account.append(raws)
    config = write_config(tmp_path, imap_account.url(), smtp_sink.url)
    app = _app(config)
    log = tmp_path / "service.log"
    rng = random.Random(2026)
    interrupted = 0
    for _ in range(5):
        proc = start_service(config, once=False, log=log)
        time.sleep(rng.uniform(0.6, 1.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if len(smtp_sink.snapshot()) < len(people):
            interrupted += 1
    assert interrupted >= 3, "the kills must interrupt real work; use more messages"
    final = start_service(config, once=True, log=log)
    assert final.wait(120) == 0, log.read_text()[-3000:]
    _assert_one_answer_each(app, smtp_sink, people, len(raws))


def test_field_case_08_answering_an_observation_sends_nothing(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    app = _app(write_config(tmp_path, imap_account.url(), smtp_sink.url))
    imap_account.append([request(2, sender="Daniela Peña <dapena.gomez@outlook.com>")])
    assert run_once(app).sent == 1
    [observation] = smtp_sink.snapshot()
    assert observation.message["X-Mailflow-Case"] == "EXP-2026-000001"
    imap_account.append([FIELD_CASE_08.read_bytes()])
    again = run_once(app)
    assert (again.ingested, again.processed, again.sent) == (1, 1, 0)
    assert len(smtp_sink.snapshot()) == 1  # outgoing: 0
    with app.database.session(readonly=True) as s:
        row = s.scalars(select(InboxMessage).order_by(InboxMessage.id.desc())).first()
        assert row is not None and row.disposition == "ignore"
        assert s.scalar(select(func.count(OutboxMessage.id))) == 1
