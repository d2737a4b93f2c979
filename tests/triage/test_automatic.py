"""Tests for mailflow.triage.automatic: auto-replies, bounces, list mail and loops versus human mail."""

from __future__ import annotations

import pytest

from mailflow.mail.parse import parse_message
from mailflow.triage.automatic import RuleHit, detect_automatic

OWN = ("mesadepartes@comision.gob.pe", "refugiados@comision.gob.pe")
DOMAIN = "comision.gob.pe"

HUMAN = (
    b"From: Ana Torres <ana.torres@gmail.com>\r\nTo: mesadepartes@comision.gob.pe\r\n"
    b"Subject: Recurso de Reconsideraci\xc3\xb3n\r\nMessage-ID: <CAF123@mail.gmail.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Recib\xc3\xad una respuesta autom\xc3\xa1tica y estoy fuera de la oficina.\r\n"
)

OUTLOOK_OOF = (
    b"From: Juan Quispe <jquispe@empresa.com.pe>\r\nTo: mesadepartes@comision.gob.pe\r\n"
    b"Subject: =?iso-8859-1?Q?Respuesta_autom=E1tica:_Cargo_de_Reconsideraci=F3n?=\r\n"
    b"Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"
    b"X-MS-Exchange-Inbox-Rules-Loop: jquispe@empresa.com.pe\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nEstar\xe9 fuera hasta el lunes.\r\n"
)

GMAIL_VACATION = (
    b"From: Maria <maria.r@gmail.com>\r\nTo: mesadepartes@comision.gob.pe\r\n"
    b"Subject: Estoy de vacaciones\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n\r\nVuelvo el 5 de enero.\r\n"
)

EXCHANGE_NDR = (
    b"From: Microsoft Outlook <postmaster@outlook.com>\r\nTo: mesadepartes@comision.gob.pe\r\n"
    b"Subject: Undeliverable: Cargo de Apelacion\r\nAuto-Submitted: auto-replied\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="NDR"\r\n\r\n'
    b"--NDR\r\nContent-Type: text/plain\r\n\r\nDelivery has failed to these recipients.\r\n"
    b"--NDR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;outlook.com\r\n"
    b"\r\nFinal-Recipient: rfc822;x@y.pe\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"--NDR\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: mesadepartes@comision.gob.pe\r\n"
    b"--NDR--\r\n"
)

POSTFIX_BOUNCE = (
    b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.proveedor.pe (Mail Delivery System)\r\n"
    b"To: mesadepartes@comision.gob.pe\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="PB"\r\n\r\n'
    b"--PB\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n--PB--\r\n"
)

LOCAL_DAEMON = (
    b"From: MAILER-DAEMON\r\nSubject: Warning: could not send message for past 4 hours\r\n\r\nx\r\n"
)

READ_RECEIPT = (
    b"From: ana@gmail.com\r\nSubject: Le\xc3\xaddo: Renuncia\r\n"
    b'Content-Type: multipart/report; report-type="disposition-notification"; boundary="R"\r\n\r\n'
    b"--R\r\nContent-Type: text/plain\r\n\r\nLeido\r\n--R--\r\n"
)

NEWSLETTER = (
    b"From: Boletin <news@tienda.pe>\r\nSubject: Ofertas de la semana\r\n"
    b"List-Unsubscribe: <mailto:unsubscribe@tienda.pe>\r\n\r\nOfertas\r\n"
)

LIST_MAIL = (
    b"From: alguien@ong.org\r\nSubject: [refugio-l] Reunion\r\nList-Id: <refugio-l.ong.org>\r\n"
    b"Precedence: list\r\n\r\nHola lista\r\n"
)

OUR_REPLY = (
    b"From: Mesa de Partes <MesaDePartes@comision.gob.pe>\r\nSubject: Cargo de recepcion\r\n"
    b"Message-ID: <20261123.1@comision.gob.pe>\r\nX-Mailflow-Case: EXP-2026-000123\r\n\r\nx\r\n"
)

X_LOOP = (
    b"From: reenvio@otro.pe\r\nSubject: Prorroga de residencia\r\n"
    b"X-Loop: refugiados@comision.gob.pe\r\n\r\nx\r\n"
)


@pytest.mark.parametrize(
    ("raw", "rules"),
    [
        (HUMAN, []),
        (OUTLOOK_OOF, ["auto_submitted", "autoreply_header", "subject"]),
        (GMAIL_VACATION, ["auto_submitted", "precedence", "subject"]),
        (
            EXCHANGE_NDR,
            ["auto_submitted", "subject", "delivery_report", "daemon_sender", "undelivered_text"],
        ),
        (POSTFIX_BOUNCE, ["subject", "delivery_report", "daemon_sender", "null_return_path"]),
        (LOCAL_DAEMON, ["daemon_sender"]),
        (READ_RECEIPT, ["delivery_report"]),
        (NEWSLETTER, ["mailing_list"]),
        (LIST_MAIL, ["precedence", "mailing_list"]),
        (OUR_REPLY, ["loop_sender", "loop_message_id", "loop_header"]),
        (X_LOOP, ["loop_header"]),
    ],
    ids=[
        "human",
        "outlook_oof",
        "gmail_vacation",
        "exchange_ndr",
        "postfix_bounce",
        "local_daemon",
        "read_receipt",
        "newsletter",
        "list",
        "our_reply",
        "x_loop",
    ],
)
def test_rules(raw: bytes, rules: list[str]) -> None:
    hits = detect_automatic(parse_message(raw), own_addresses=OWN, own_domain=DOMAIN)
    assert [h.rule for h in hits] == rules
    assert all(isinstance(h, RuleHit) and h.reason for h in hits)


def test_reasons_are_spanish_and_name_the_evidence() -> None:
    hits = detect_automatic(parse_message(OUTLOOK_OOF))
    assert hits[0] == RuleHit(
        "auto_submitted", "Respuesta automática (Auto-Submitted: auto-replied)"
    )
    ndr = {h.rule: h.reason for h in detect_automatic(parse_message(EXCHANGE_NDR))}
    assert ndr["delivery_report"] == "Notificación de entrega fallida (multipart/report)"
    receipt = detect_automatic(parse_message(READ_RECEIPT))
    assert "Acuse de lectura" in receipt[0].reason


@pytest.mark.parametrize(
    ("subject", "automatic"),
    [
        ("Respuesta automática: Actualización de datos", True),
        ("RESPUESTA AUTOMATICA", True),
        ("Fuera de la oficina: Renuncia", True),
        ("Out of Office: Recurso de Apelación", True),
        ("Automatic reply: Prórroga", True),
        ("Autoreply", True),
        ("Resposta automática: Renúncia", True),
        ("Ausente", True),
        ("Ausente hasta el 5 de enero", True),
        ("Vacaciones: vuelvo el lunes", True),
        ("Delivery Status Notification (Failure)", True),
        ("Undeliverable: Cargo", True),
        ("Mail delivery failed: returning message to sender", True),
        ("No se puede entregar: Oficio", True),
        ("Returned mail: see transcript for details", True),
        ("Autorización de viaje por vacaciones", False),
        ("Ausente en mi cita del lunes, solicito reprogramación", False),
        ("Vacaciones útiles para mis hijos", False),
        ("RE: Actualización de datos", False),
        ("", False),
    ],
)
def test_subject_rule(subject: str, automatic: bool) -> None:
    raw = b"From: p@gmail.com\r\nSubject: " + subject.encode("utf-8") + b"\r\n\r\nx\r\n"
    rules = [h.rule for h in detect_automatic(parse_message(raw))]
    assert (rules == ["subject"]) is automatic


@pytest.mark.parametrize(
    ("header", "automatic"),
    [
        (b"Auto-Submitted: no", False),
        (b"Auto-Submitted: auto-generated", True),
        (b"X-Autoreply: yes", True),
        (b"X-Autorespond: Vacation", True),
        (b"X-Auto-Response-Suppress: OOF, AutoReply", True),
        (b"Precedence: junk", True),
        (b"Precedence: first-class", False),
        (b"Return-Path: <ana@gmail.com>", False),
        (b"X-Loop: someone@else.pe", True),  # any X-Loop: another system already answered
        (b"Precedence: bulk", True),
        (b"Precedence: list", True),
    ],
)
def test_header_rules(header: bytes, automatic: bool) -> None:
    raw = b"From: p@gmail.com\r\nSubject: Renuncia\r\n" + header + b"\r\n\r\nx\r\n"
    hits = detect_automatic(parse_message(raw), own_addresses=OWN, own_domain=DOMAIN)
    assert bool(hits) is automatic


def test_loop_rules_need_our_identity() -> None:
    msg = parse_message(OUR_REPLY)
    assert [h.rule for h in detect_automatic(msg)] == ["loop_header"]
    other = detect_automatic(msg, own_addresses=["x@y.pe"], own_domain="otro.pe")
    assert [h.rule for h in other] == ["loop_header"]


ABSENCE_SUBJECT_WITH_REQUEST = (
    b"From: Maria Lopez <maria.lopez@gmail.com>\r\nTo: refugiados@comision.gob.pe\r\n"
    b"Subject: Estoy de vacaciones: Autorizacion de Viaje\r\nMessage-ID: <v5@gmail.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Motivo: visita familiar\r\nDestino: Chile\r\nFecha de salida: 15/12/2026\r\n"
    b"Fecha de retorno: 30/12/2026\r\nNombres y apellidos: Maria Lopez Perez\r\n"
)


def test_an_absence_subject_before_a_real_request_is_a_person() -> None:
    """A person may start a subject with "Estoy de vacaciones": with request data it is a
    request (answered), without it an absence notice (issue 10: when in doubt, answer)."""
    assert detect_automatic(parse_message(ABSENCE_SUBJECT_WITH_REQUEST), own_domain=DOMAIN) == []
    bare = ABSENCE_SUBJECT_WITH_REQUEST.split(b"\r\n\r\n")[0] + b"\r\n\r\nVuelvo en enero.\r\n"
    hits = detect_automatic(parse_message(bare), own_domain=DOMAIN)
    assert [h.rule for h in hits] == ["subject"]
