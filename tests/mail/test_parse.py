"""Tests for mailflow.mail.parse: decoding, body choice, attachments and never raising."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.mail.defects import Defect, DefectCode
from mailflow.mail.htmltext import html_to_text
from mailflow.mail.message import ParsedMessage
from mailflow.mail.parse import parse_message

SIMPLE = (
    b"From: =?iso-8859-1?Q?Jos=E9_P=E9rez?= <Jose.Perez@Example.COM>\r\n"
    b"To: mesadepartes@comision.gob.pe, Otro <otro@x.pe>\r\n"
    b"Subject: =?utf-8?B?QWN0dWFsaXphY2nDs24gZGUgZGF0b3M=?=\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 -0500\r\n"
    b"Message-ID: <abc123@mail.example.com>\r\n"
    b"In-Reply-To: <prev@mailflow.pe>\r\n"
    b"References: <first@mailflow.pe>\r\n <prev@mailflow.pe>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Nombre completo: Jos\xc3\xa9 P\xc3\xa9rez\r\nCelular: 987654321\r\n"
)


def _mime(*parts: bytes, ctype: str = "multipart/mixed", headers: bytes = b"") -> bytes:
    body = b"".join(b"--BOUND\r\n" + p + b"\r\n" for p in parts) + b"--BOUND--\r\n"
    return (
        b"From: a@b.pe\r\nSubject: x\r\n"
        + headers
        + b"Content-Type: "
        + ctype.encode()
        + b'; boundary="BOUND"\r\n\r\n'
        + body
    )


def test_simple_message_headers() -> None:
    msg = parse_message(SIMPLE)
    assert msg.raw == SIMPLE
    assert msg.subject == "Actualización de datos"
    assert msg.sender == "jose.perez@example.com"
    assert msg.sender_name == "José Pérez"
    assert msg.to == ("mesadepartes@comision.gob.pe", "otro@x.pe")
    assert msg.date == dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    assert msg.message_id == "abc123@mail.example.com"
    assert msg.in_reply_to == ("prev@mailflow.pe",)
    assert msg.references == ("first@mailflow.pe", "prev@mailflow.pe")
    assert msg.text == "Nombre completo: José Pérez\nCelular: 987654321\n"
    assert msg.header("Subject") == "Actualización de datos"
    assert msg.headers["references"] == ("<first@mailflow.pe> <prev@mailflow.pe>",)
    assert msg.defects == ()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"=?utf-8?Q?Pr=C3=B3rroga_de_residencia?=", "Prórroga de residencia"),
        (b"=?ISO-8859-1?Q?Pr=F3rroga_de_residencia?=", "Prórroga de residencia"),
        (b"=?windows-1252?Q?=93Renuncia=94?=", "“Renuncia”"),
        (
            b"=?iso-8859-1?B?UmVudW5jaWEgYWwgZXN0YXR1dG8gZGUgcmVmdWdpYWRv?=",
            "Renuncia al estatuto de refugiado",
        ),
        (
            b"RE: =?utf-8?B?UmVjdXJzbyBkZSBB?=\r\n =?utf-8?B?cGVsYWNpw7Nu?=",
            "RE: Recurso de Apelación",
        ),
        (b"=?utf-8?Q?Autorizaci=F3n_de_viaje?=", "Autorización de viaje"),  # mislabelled
        (b"Actualizaci\xf3n de datos", "Actualización de datos"),  # raw latin-1
        (b"Actualizaci\xc3\xb3n de datos", "Actualización de datos"),  # raw utf-8
        (b"=?x-unknown?Q?Cambio_de_clave?=", "Cambio de clave"),
        (b"=?utf-8?B?!!!?=", "=?utf-8?B?!!!?="),
        (b"", ""),
    ],
)
def test_subject_decoding(header: bytes, expected: str) -> None:
    raw = b"From: a@b.pe\r\nSubject: " + header + b"\r\n\r\nhola\r\n"
    msg = parse_message(raw)
    assert msg.subject == expected
    assert "\ufffd" not in msg.subject


def test_mislabelled_utf8_body_falls_back_to_cp1252() -> None:
    raw = (
        b"From: a@b.pe\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nSe\xf1or, mi tel\xe9fono \x96 987654321\r\n"
    )
    msg = parse_message(raw)
    assert msg.text == "Señor, mi teléfono – 987654321\n"
    assert DefectCode.NOT_UTF8 in [d.code for d in msg.defects]


def test_latin1_quoted_printable_body() -> None:
    raw = (
        b"From: a@b.pe\r\nSubject: x\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nNacionalidad: venezolana=0D\r\n"
        b"Direcci=F3n: Av. Espa=F1a 123 =\r\nLima\r\n"
    )
    msg = parse_message(raw)
    assert "Dirección: Av. España 123 Lima" in msg.text
    assert "\r" not in msg.text


def test_unknown_charset_is_a_defect() -> None:
    raw = b"From: a@b.pe\r\nContent-Type: text/plain; charset=x-foo\r\n\r\nPer\xfa\r\n"
    msg = parse_message(raw)
    assert msg.text == "Perú\n"
    text = "juego de caracteres desconocido «x-foo»; se decodificó como latin-1"
    assert Defect(DefectCode.CHARSET_UNKNOWN, text) in msg.defects


def test_multipart_alternative_prefers_plain_and_keeps_html() -> None:
    plain = b"Content-Type: text/plain; charset=utf-8\r\n\r\nTel\xc3\xa9fono: 999"
    html = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Tel&eacute;fono: <b>999</b></p>"
    msg = parse_message(_mime(plain, html, ctype="multipart/alternative"))
    assert msg.text == "Teléfono: 999"
    assert msg.html == "<p>Tel&eacute;fono: <b>999</b></p>"
    assert msg.content_type == "multipart/alternative"
    assert msg.attachments == ()


OUTLOOK_HTML = b"""<html><head><style>p.MsoNormal {margin:0cm;}</style>
<script>alert('x')</script><title>t</title></head>
<body lang=ES><div class=WordSection1><p class=MsoNormal>Buenos d&iacute;as,<o:p></o:p></p>
<table border=0><tr><td><p>Nombres y apellidos:</p></td><td><p>Mar&iacute;a L&oacute;pez</p></td></tr>
<tr><td>Carn&eacute; de extranjer&iacute;a:</td><td>001234567</td></tr></table>
<div>Atentamente,<br>Mar&iacute;a<br/>Cel. 987&nbsp;654&nbsp;321</div></div></body></html>"""


def test_html_only_outlook_message_becomes_plain_lines() -> None:
    html = (
        b"Content-Type: text/html; charset=windows-1252\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(OUTLOOK_HTML)
    )
    msg = parse_message(_mime(html, ctype="multipart/related"))
    lines = msg.text.splitlines()
    assert "Buenos días," in lines
    assert "Nombres y apellidos:\tMaría López" in lines
    assert "Carné de extranjería:\t001234567" in lines
    assert "Cel. 987 654 321" in lines
    assert "alert" not in msg.text and "MsoNormal" not in msg.text and "<" not in msg.text
    assert msg.html is not None and msg.html.startswith("<html>")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<div dir=ltr>Hola<div>Mundo</div></div>", "Hola\nMundo"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<p>uno</p><p>dos</p>", "uno\n\ndos"),
        ("<ul><li>x</li><li>y</li></ul>", "- x\n- y"),
        ("<style>body{}</style><script>var a=1;</script>solo", "solo"),
        ("<pre>a  b\nc</pre>", "a b\nc"),
        ("texto &amp; m&aacute;s &lt;x&gt;", "texto & más <x>"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_attachments_with_rfc2231_and_rfc2047_names() -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"
    parts = [
        b"Content-Type: text/plain\r\n\r\nAdjunto mi DNI",
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment;"
        b" filename*=utf-8''Declaraci%C3%B3n%20jurada.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(pdf),
        b"Content-Type: application/pdf;\r\n name*0*=iso-8859-1''Denuncia%20polic;\r\n"
        b" name*1*=%EDa.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(pdf),
        b'Content-Type: image/jpeg; name="=?utf-8?Q?foto_carn=C3=A9.jpg?="\r\n'
        b"Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ",
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC",
    ]
    msg = parse_message(_mime(*parts))
    names = [a.filename for a in msg.attachments]
    assert names == [
        "Declaración jurada.pdf",
        "Denuncia policía.pdf",
        "foto carné.jpg",
        "adjunto-4.bin",
    ]
    assert msg.attachments[0].data == pdf
    assert [a.filename for a in msg.pdfs] == names[:2]
    assert msg.attachments[3].data == b"\x00\x01\x02"
    assert msg.text == "Adjunto mi DNI"


def test_forwarded_message_is_kept_as_eml_and_its_pdf_extracted() -> None:
    inner = (
        b"From: jefe@x.pe\r\nSubject: Resoluci\xc3\xb3n\r\nContent-Type: multipart/mixed;"
        b' boundary="IN"\r\n\r\n--IN\r\nContent-Type: text/plain\r\n\r\nTexto interno\r\n'
        b"--IN\r\nContent-Type: application/pdf; name=r.pdf\r\n\r\n%PDF-1.7 fake\r\n--IN--\r\n"
    )
    outer = _mime(
        b"Content-Type: text/plain\r\n\r\nLes reenv\xc3\xado la resoluci\xc3\xb3n.",
        b"Content-Type: message/rfc822\r\n\r\n" + inner,
    )
    msg = parse_message(outer)
    assert msg.text == "Les reenvío la resolución."
    eml = [a for a in msg.attachments if a.content_type == "message/rfc822"]
    assert len(eml) == 1 and eml[0].filename.endswith(".eml")
    assert eml[0].data.startswith(b"From: jefe@x.pe")
    assert [a.filename for a in msg.pdfs] == ["r.pdf"]


def test_forward_without_outer_text_uses_inner_text() -> None:
    inner = b"From: x@y.pe\r\nSubject: s\r\n\r\nCuerpo reenviado\r\n"
    msg = parse_message(_mime(b"Content-Type: message/rfc822\r\n\r\n" + inner))
    assert msg.text == "Asunto: s\n\nCuerpo reenviado\n"  # headed by its own subject


def test_too_many_parts() -> None:
    parts = [b"Content-Type: text/plain\r\n\r\nparte %d" % i for i in range(1000)]
    msg = parse_message(_mime(*parts), max_parts=200)
    text = "demasiadas partes (1001 > 200); se ignoraron las restantes"
    assert Defect(DefectCode.PARTS_TOO_MANY, text) in msg.defects
    assert msg.text.startswith("parte 0\n\nparte 1")
    assert "parte 500" not in msg.text


def test_big_attachment_is_a_defect_not_an_attachment() -> None:
    big = b"Content-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    big += base64.encodebytes(b"%PDF" + b"\0" * (3 * 1024 * 1024))
    small = b"Content-Type: application/pdf; name=ok.pdf\r\n\r\n%PDF-1.4"
    msg = parse_message(_mime(big, small), max_attachment_bytes=1024 * 1024)
    assert [a.filename for a in msg.attachments] == ["ok.pdf"]
    text = "adjunto demasiado grande: «x.pdf» (3.0 MB)"
    assert Defect(DefectCode.ATTACHMENT_TOO_BIG, text) in msg.defects


def test_truncated_multipart_keeps_what_arrived() -> None:
    raw = _mime(
        b"Content-Type: text/plain\r\n\r\nNombre: Ana", b"Content-Type: text/plain\r\n\r\nx"
    )
    msg = parse_message(raw[: raw.index(b"\r\nx") - 5])
    assert msg.text.startswith("Nombre: Ana")
    assert any(d.code is DefectCode.MIME_TRUNCATED for d in msg.defects)
    assert any(str(d).startswith("mensaje MIME truncado") for d in msg.defects)


def test_invalid_base64_is_recovered() -> None:
    part = b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ"
    msg = parse_message(_mime(part))
    assert msg.attachments[0].data.startswith(b"%PDF-1.4")
    text = "base64 inválido en «a.pdf»; se recuperó lo posible"
    assert Defect(DefectCode.BASE64_INVALID, text) in msg.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"Subject: sin remitente\r\n\r\ncuerpo",
        b"From: \r\nDate: ayer\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nsin boundary",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 400,
        b"From: <<<@@@>>>\r\nMessage-ID: sin-corchetes\r\n\r\nx",
        b'Content-Type: text/plain; charset="\x00"\r\n\r\nx',
    ],
)
def test_hostile_inputs_never_raise(raw: bytes) -> None:
    msg = parse_message(raw)
    assert isinstance(msg, ParsedMessage)
    assert msg.raw == raw
    assert "\x00" not in msg.text


def test_deep_nesting_is_bounded() -> None:
    raw = b"From: a@b.pe\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 60):
        raw += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
    raw += b"--b59\r\nContent-Type: text/plain\r\n\r\nfondo\r\n"
    msg = parse_message(raw)
    assert msg.raw == raw
    text = "anidamiento MIME demasiado profundo (> 30); se ignoró el resto"
    assert Defect(DefectCode.MIME_TOO_DEEP, text) in msg.defects
    assert "fondo" not in msg.text


def test_stdlib_fallback_when_flanker_rejects_the_structure() -> None:
    raw = (
        b"From: Ana <ana@x.pe>\r\nSubject: Renuncia\r\nContent-Type: multipart/mixed\r\n\r\n"
        b"Nombre: Ana Ruiz\r\n"
    )
    msg = parse_message(raw)
    assert msg.sender == "ana@x.pe" and msg.subject == "Renuncia"
    assert "Nombre: Ana Ruiz" in msg.text
    assert any(d.code is DefectCode.MIME_MALFORMED for d in msg.defects)
    assert any(str(d).startswith("MIME mal formado") for d in msg.defects)


def test_missing_headers_and_bad_date() -> None:
    msg = parse_message(b"Date: not a date\r\nFrom: sin arroba\r\n\r\nHola")
    assert msg.sender == "" and msg.date is None and msg.message_id is None
    assert msg.text == "Hola"
    assert any(d.code is DefectCode.DATE_UNREADABLE for d in msg.defects)
    assert any(str(d).startswith("fecha ilegible") for d in msg.defects)


def test_text_is_normalised_and_capped() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\nA\x00e\xcc\x81\r\nB\rC" + b"x" * 100
    msg = parse_message(raw, max_text_chars=10)
    assert msg.text == "Aé\nB\nCxxxx"[:10]
    assert Defect(DefectCode.TEXT_TRUNCATED, "texto recortado a 10 caracteres") in msg.defects


def test_import_prints_nothing() -> None:
    code = "import mailflow.mail.parse, mailflow.triage.automatic; from mailflow.mail.parse import parse_message; parse_message(b'From: A <a@b.pe>\\r\\n\\r\\nx')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "" and done.stderr == ""


MIME_SAMPLE = _mime(
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSe=F1or",
    b"Content-Type: text/html\r\n\r\n<p>hola</p>",
    b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK",
    b"Content-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: s\r\n\r\ninner",
)


@st.composite
def mutated_mime(draw: st.DrawFn) -> bytes:
    raw = bytearray(MIME_SAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["truncate", "header", "boundary", "bytes"]))
        pos = draw(st.integers(0, len(raw)))
        if action == "truncate":
            del raw[pos:]
        elif action == "header":
            raw[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\nContent-Type: multipart/mixed; boundary=BOUND\r\n",
                        b"\r\nContent-Transfer-Encoding: base64\r\n",
                        b"\r\nContent-Type: text/plain; charset=x-foo\r\n",
                        b"\r\n\r\n",
                        b"\r\n--BOUND--\r\n",
                    ]
                )
            )
        elif action == "boundary":
            at = raw.find(b"--BOUND", pos)
            if at >= 0:
                raw[at : at + 7] = draw(st.sampled_from([b"--BOUN", b"--BOUNDX", b"-BOUND", b""]))
        else:
            raw[pos:pos] = draw(st.binary(max_size=20))
    return bytes(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_property_arbitrary_bytes(raw: bytes) -> None:
    msg = parse_message(raw)
    assert msg.raw == raw
    assert isinstance(msg.text, str) and "\x00" not in msg.text


@settings(max_examples=200, deadline=None)
@given(mutated_mime())
def test_property_mutated_mime(raw: bytes) -> None:
    msg = parse_message(raw)
    assert msg.raw == raw
    assert all(isinstance(a.data, bytes) for a in msg.attachments)
