"""Straight through over real Dovecot + SMTP: registry imported by the command, one
`mailflow run --once`, the signed oficio to Migraciones and the same bytes to the applicant."""

from __future__ import annotations

import datetime as dt
import io
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import format_datetime, parseaddr
from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.intake.pdftext import read_pdf
from mailflow.ops.keys import keys_demo
from mailflow.store.models import Case, InboxMessage
from tests.support.dovecot import DovecotAccount
from tests.support.mail_requests import auto_reply
from tests.support.mailservice import MIGRACIONES, REPO, start_service, write_config
from tests.support.pdfs import make_pdf
from tests.support.smtp_sink import Captured, SmtpSink
from tests.support.waiting import wait_for

NAMES = ("Ana Gómez Ruiz", "Luis Pérez Soto", "Marta Díaz León", "Jorge Ríos Vega",
         "Rosa Flores Paz", "Pedro Castro Luna", "Elena Vargas Mora", "Carlos Rojas Gil")  # fmt: skip


@dataclass(frozen=True)
class Person:
    """A test applicant: registry row and how they write."""

    i: int
    status: str = "Refugiado reconocido"
    registered: bool = True

    @property
    def name(self) -> str:
        return NAMES[self.i % len(NAMES)]

    @property
    def carne(self) -> str:
        return f"0001{self.i:05d}"

    @property
    def email(self) -> str:
        return f"persona{self.i}@example.org"


def _request(
    person: Person,
    tramite: str,
    *,
    sender: str | None = None,
    complete: bool = True,
) -> bytes:
    subject = {
        "prorroga": "Prórroga de residencia",
        "duplicado": "Duplicado de carné de extranjería",
    }
    msg = EmailMessage()
    msg["From"] = f"{person.name} <{sender or person.email}>"
    msg["To"] = "refugiados@cepr.mailflow.localhost"
    msg["Subject"] = subject[tramite]
    msg["Date"] = format_datetime(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    msg["Message-ID"] = f"<st{person.i}.{tramite}@example.org>"
    body = (
        f"Nombres y apellidos: {person.name}\nSexo: Femenino\nNacionalidad: venezolana\n"
        f"Documento de identidad: Pasaporte 4{person.i:07d}\n"
        f"Carné de extranjería: {person.carne}\nFecha de nacimiento: 12/03/1990\n"
    )
    if complete:
        body += f"Teléfono: 987654{person.i % 1000:03d}\n"
    msg.set_content(body)
    if tramite == "duplicado":
        pdf = make_pdf(["Denuncia policial", "Policía Nacional del Perú", "Pérdida de carné"])
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="denuncia.pdf")
    return bytes(msg)


def _registry_csv(path: Path, people: list[Person]) -> Path:
    lines = ["Apellidos y nombres;Carné de extranjería;Correo electrónico;Condición;Nacionalidad"]
    lines += [f"{p.name};{p.carne};{p.email};{p.status};venezolana" for p in people if p.registered]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import_registry(config: Path, csv_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailflow", "--config", str(config), "registry", "import",
         str(csv_path), "--map", "Condición=status"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class Mix:
    """The mailbox: which requests must go straight through and which must go to staff."""

    raws: list[bytes]
    automatic: dict[str, Person]  # request Message-ID → person
    to_staff: dict[str, str]  # request Message-ID → expected state


def _mix(n_auto: int) -> tuple[Mix, list[Person]]:
    people = [Person(i) for i in range(n_auto)]
    raws: list[bytes] = []
    automatic: dict[str, Person] = {}
    to_staff: dict[str, str] = {}
    for p in people:
        kind = "prorroga" if p.i % 3 else "duplicado"
        raws.append(_request(p, kind))
        automatic[f"<st{p.i}.{kind}@example.org>"] = p
    base = n_auto
    incomplete = Person(base)
    unregistered = Person(base + 1, registered=False)
    elsewhere = Person(base + 2)
    applicant_only = Person(base + 3, status="Solicitante")
    people += [incomplete, unregistered, elsewhere, applicant_only]
    raws.append(_request(incomplete, "prorroga", complete=False))
    to_staff[f"<st{incomplete.i}.prorroga@example.org>"] = "observado"
    raws.append(_request(unregistered, "prorroga"))
    to_staff[f"<st{unregistered.i}.prorroga@example.org>"] = "validado"
    raws.append(_request(elsewhere, "duplicado", sender="otra.direccion@example.net"))
    to_staff[f"<st{elsewhere.i}.duplicado@example.org>"] = "validado"
    raws.append(_request(applicant_only, "prorroga"))
    to_staff[f"<st{applicant_only.i}.prorroga@example.org>"] = "validado"
    raws += [auto_reply(900), auto_reply(901)]
    random.Random(11).shuffle(raws)
    return Mix(raws, automatic, to_staff), people


def _pdfs(message: Message) -> list[bytes]:
    return [
        part.get_payload(decode=True)
        for part in message.walk()
        if part.get_content_type() == "application/pdf"
    ]


def _assert_straight_through(
    app: App, sink: SmtpSink, mix: Mix, captured_mail: list[Captured] | None = None
) -> None:
    migraciones: dict[str, list[Message]] = defaultdict(list)  # case number → mails
    copies: dict[str, list[Message]] = defaultdict(list)  # In-Reply-To → copies of the oficio
    for captured in sink.snapshot() if captured_mail is None else captured_mail:
        msg = captured.message
        if captured.rcpt_tos == [MIGRACIONES]:
            migraciones[str(msg["X-Mailflow-Case"])].append(msg)
        elif _pdfs(msg) and "oficio" in str(msg["Subject"]).lower():
            copies[str(msg["In-Reply-To"]).strip()].append(msg)
    with app.database.session(readonly=True) as s:
        by_request: dict[str, Case] = {}
        for inbox in s.scalars(select(InboxMessage).where(InboxMessage.case_id.is_not(None))):
            case = s.get(Case, inbox.case_id)
            assert case is not None
            by_request[f"<{inbox.message_id.strip('<>')}>"] = case
        # every straight-through request: one signed oficio to Migraciones, one copy (same bytes)
        for mid, person in mix.automatic.items():
            case = by_request[mid]
            assert case.state == "copia_enviada", (mid, case.state, case.flags)
            assert (case.sla or {}).get("entregado_at"), case.number
            sent = migraciones[case.number]
            assert len(sent) == 1, (case.number, len(sent))
            (oficio,) = _pdfs(sent[0])
            reader = PdfFileReader(io.BytesIO(oficio))
            assert len(reader.embedded_signatures) == 1
            text = read_pdf(oficio).text
            assert "Ley N° 27444" in text and "Autoridad responsable" in text
            copy = copies[mid]
            assert len(copy) == 1, (mid, len(copy))
            assert _pdfs(copy[0]) == [oficio]  # the very same bytes
            assert parseaddr(str(copy[0]["To"]))[1] == person.email
        # the others: nothing to Migraciones, waiting for staff (or for the applicant)
        queue = app.machines["oficio"].queue_states
        for mid, state in mix.to_staff.items():
            case = by_request[mid]
            assert case.state == state, (mid, case.state)
            assert state == "observado" or state in queue  # incomplete: the applicant is asked
            assert migraciones.get(case.number, []) == []
            assert copies.get(mid, []) == []
        assert sum(len(v) for v in migraciones.values()) == len(mix.automatic)


def _product_mail(sink: SmtpSink) -> list[Message]:
    """Mail carrying an oficio: to Migraciones or the applicant's copy."""
    return [c.message for c in sink.snapshot() if _pdfs(c.message)]


def _prepare(tmp_path: Path, imap: DovecotAccount, sink: SmtpSink, n_auto: int) -> tuple:
    mix, people = _mix(n_auto)
    imap.append(mix.raws)
    config = write_config(tmp_path, imap.url(), sink.url)
    app = App(load_settings(config, env={}))
    keys_demo(app.settings)
    report = _import_registry(config, _registry_csv(tmp_path / "registro.csv", people))
    assert f"Importado: {len([p for p in people if p.registered])} nuevos" in report, report
    return config, app, mix


def test_one_run_once_delivers_each_automatic_oficio_and_its_copy(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    config, app, mix = _prepare(tmp_path, imap_account, smtp_sink, 6)
    log = tmp_path / "service.log"
    proc = start_service(config, once=True, log=log)
    assert proc.wait(300) == 0, log.read_text()[-3000:]
    _assert_straight_through(app, smtp_sink, mix)


def test_sigkill_during_the_chain_sends_nothing_twice(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    config, app, mix = _prepare(tmp_path, imap_account, smtp_sink, 40)
    log = tmp_path / "service.log"
    rng = random.Random(5)
    interrupted = 0  # kills that landed while products were still undelivered
    for _ in range(4):
        before = len(_product_mail(smtp_sink))
        if before >= 2 * len(mix.automatic):
            break  # everything delivered: nothing left to interrupt
        proc = start_service(config, once=False, log=log)
        # kill once this run is delivering, mid-batch and mid-chain (a fixed delay from the
        # start lands after the whole chain on a fast machine)
        wait_for(lambda: len(_product_mail(smtp_sink)) > before, interval=0.005)  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if len(_product_mail(smtp_sink)) < 2 * len(mix.automatic):
            interrupted += 1
    assert interrupted >= 2, "the kills must interrupt the chain; use more requests"
    final = start_service(config, once=True, log=log)
    assert final.wait(300) == 0, log.read_text()[-3000:]
    # A kill while the server is answering 250 to DATA is SMTP's own duplicate window (RFC 5321
    # §6.1: the server has the message, the client never learns it): at most the one message
    # in flight per kill may arrive twice, as the very same bytes. Anything the sender had
    # been told (250 read, journaled) must never go out again.
    by_id: dict[str, list[Captured]] = defaultdict(list)
    for captured in smtp_sink.snapshot():
        by_id[str(captured.message["Message-ID"])].append(captured)
    twice = {mid: got for mid, got in by_id.items() if len(got) > 1}
    assert len(twice) <= interrupted, sorted(twice)
    assert all(len(got) == 2 and got[0].raw == got[1].raw for got in twice.values()), twice
    _assert_straight_through(app, smtp_sink, mix, [got[0] for got in by_id.values()])
