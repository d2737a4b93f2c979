"""Automatic mail recognised by content: header-less out-of-office replies in es/en/pt,
non-standard bounces, malformed postmaster senders, X-Loop, Precedence and no-reply senders."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.mail.parse import parse_message
from mailflow.triage.automatic import RULES, detect_automatic

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "cepr.mailflow.localhost"
OWN = (f"refugiados@{DOMAIN}", f"mesadepartes@{DOMAIN}")
OUR_ID = f"<mf.exp-2026-000001.c638e8fab3e9aeb5e04a@{DOMAIN}>"


def _reply(body: str, *, sender: str = "persona@example.org", ours: bool = True,
           subject: str = "RE: Observación", extra: str = "") -> bytes:  # fmt: skip
    thread = f"In-Reply-To: {OUR_ID}\r\nReferences: {OUR_ID}\r\n" if ours else ""
    return (
        f"From: Persona <{sender}>\r\nTo: refugiados@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <x1@example.org>\r\n{thread}{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def _rules(raw: bytes) -> list[str]:
    hits = detect_automatic(parse_message(raw), own_addresses=OWN, own_domain=DOMAIN)
    return [h.rule for h in hits]


def test_every_rule_has_a_name_and_a_description() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(r.description for r in RULES)


def test_field_case_08_is_an_out_of_office_reply() -> None:
    raw = (ROOT / "tests/fixtures/mail/auto_13_fuera_oficina_sin_cabeceras.eml").read_bytes()
    assert _rules(raw) == ["out_of_office_text"]


@pytest.mark.parametrize(
    "body",
    [
        "Gracias por su mensaje. Me encuentro fuera de la oficina hasta el 15 de junio.",
        "Thank you for your email. I am currently out of the office with limited access to email.",
        "Obrigado pela mensagem. Estou fora do escritório até segunda-feira.",
        "Esta es una respuesta automática: estaré fuera de Lima esta semana.",
    ],
    ids=["es", "en", "pt", "es-respuesta-automatica"],
)
def test_out_of_office_without_headers_in_three_languages(body: str) -> None:
    assert _rules(_reply(body)) == ["out_of_office_text"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (
            _reply("Estoy de vacaciones con mi familia y necesito viajar; adjunto mis datos."),
            "'de vacaciones' also appears in real travel requests",
        ),
        (
            _reply("Me encuentro fuera de la oficina.", ours=False),
            "not an answer to one of our messages",
        ),
        (
            _reply(
                "Me encuentro fuera de la oficina, pero les envío lo pedido.\n"
                "Teléfono: 987654321\nPasaporte: 123456789\n"
            ),
            "it carries request data",
        ),
        (
            _reply("Fuera de la oficina. " + "Les explico mi situación con detalle. " * 30),
            "too long for an auto-reply",
        ),
        (
            _reply("Estoy fuera de la oficina, ¿puedo enviar los documentos el lunes?"),
            "a person asking for time",
        ),
    ],
    ids=["travel-request", "not-a-reply", "with-data", "long", "question"],
)
def test_when_in_doubt_a_person_wrote_it(raw: bytes, why: str) -> None:
    assert _rules(raw) == [], why


@pytest.mark.parametrize(
    "raw",
    [
        _reply(
            "Votre message n'a pas pu être remis: non remis à destinataire.\r\n"
            f"Message-ID: {OUR_ID}\r\n",
            sender="systeme@mx.exemple.fr",
            ours=False,
            subject="Notification",
        ),
        _reply(
            "El mensaje no se pudo entregar a los siguientes destinatarios.\r\n\r\n"
            "----- Mensaje original -----\r\nX-Mailflow-Case: EXP-2026-000001\r\n",
            sender="avisos@correo.gob.pe",
            ours=False,
            subject="Aviso",
        ),
        _reply(
            "This message could not be delivered to one or more recipients.",
            sender="mailer@mx.example.com",
            ours=False,
            subject="Aviso del servidor",
        ),
        _reply(
            "Delivery to the following recipient has been delayed. Mail Delivery Warning.",
            sender="gateway@example.com",
            ours=False,
            subject="Mail Delivery Warning",
        ),
    ],
    ids=["fr-returned-id", "es-returned-headers", "en-system-sender", "warning-subject"],
)
def test_bounces_without_standard_structure(raw: bytes) -> None:
    assert "undelivered_text" in _rules(raw) or "subject" in _rules(raw)
    assert _rules(raw)


def test_a_person_saying_something_could_not_be_delivered_is_answered() -> None:
    raw = _reply(
        "Buenas tardes, mi documento no se pudo entregar en la oficina. ¿Qué hago?",
        ours=False, subject="Consulta",
    )  # fmt: skip
    assert _rules(raw) == []


@pytest.mark.parametrize(
    "sender",
    [
        "From: <Postmaster\\@mx.example.org@mx.example.org>",
        "From: MAILER-DAEMON",
        'From: "Mail Delivery Subsystem" <mailer-daemon@googlemail.com>',
        "From: postmaster",
    ],
)
def test_postmaster_and_mailer_daemon_even_malformed(sender: str) -> None:
    raw = f"{sender}\r\nSubject: aviso\r\n\r\nx\r\n".encode()
    assert "daemon_sender" in _rules(raw)


@pytest.mark.parametrize(
    "address", ["noreply@bank.pe", "no-reply@x.com", "donotreply@y.org", "do_not_reply@z.pe",
                "no.responder@gob.pe"],
)  # fmt: skip
def test_no_reply_senders_get_no_answer(address: str) -> None:
    assert "noreply_sender" in _rules(_reply("Su clave fue cambiada.", sender=address, ours=False))


def test_a_name_starting_with_no_is_not_a_no_reply_sender() -> None:
    assert _rules(_reply("Hola", sender="noreen@example.org", ours=False)) == []


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        ("X-Loop: cualquier-cosa", "loop_header"),
        ("Precedence: bulk", "precedence"),
        ("Precedence: list", "precedence"),
        ("Precedence: junk", "precedence"),
    ],
)
def test_loop_and_precedence_headers(header: str, rule: str) -> None:
    raw = _reply("Hola, adjunto mis datos.", ours=False, extra=header + "\r\n")
    assert rule in _rules(raw)
