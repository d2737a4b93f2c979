"""Inline test requests for the mail edges: procedures, an auto-reply and a bounce."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime

DOMAIN = "cepr.mailflow.localhost"

PROCEDURES = [
    (
        "Actualización de datos",
        "Nombres y apellidos: {name}\nNacionalidad: venezolana\nPasaporte: {doc}\n"
        "Carné de extranjería: CE{doc}\nTeléfono: +51 987 654 {tail}\n",
    ),
    (
        "Cambio de clave y contraseña",
        "Nombre completo: {name}\nDocumento de identidad: {doc}\nCelular: 987654{tail}\n"
        "Correo: persona{tail}@example.org\n",
    ),
    ("Prórroga de residencia", "Hola, solicito la prórroga. Mi nombre es {name}.\n"),
    ("Carné de solicitante", "Buenos días, quisiera mi carné. {name}\n"),
]


def request(i: int, sender: str | None = None) -> bytes:
    """The i-th applicant request (a person wrote it: it must be answered once)."""
    subject, body = PROCEDURES[i % len(PROCEDURES)]
    msg = EmailMessage()
    msg["From"] = sender or f"Persona {i} <persona{i}@example.org>"
    msg["To"] = f"mesadepartes@{DOMAIN}"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    msg["Message-ID"] = f"<req{i}@example.org>"
    msg.set_content(
        body.format(name=f"María Pérez {i}", doc=f"{100000 + i}", tail=f"{i % 1000:03d}")
    )
    return bytes(msg)


def auto_reply(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"ausente{i}@example.org"
    msg["To"] = f"mesadepartes@{DOMAIN}"
    msg["Subject"] = "Fuera de la oficina"
    msg["Auto-Submitted"] = "auto-replied"
    msg["Message-ID"] = f"<auto{i}@example.org>"
    msg.set_content("Estoy fuera de la oficina hasta el lunes.")
    return bytes(msg)


def bounce(i: int) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: mesadepartes@{DOMAIN}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce{i}@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode()
