"""A generated corpus of malformed and malicious mail, and a runner that times each message.

`hostile_corpus()` builds every message in memory (bombs included, ~2 s). Run as a module,
`python -m tests.support.hostile CONFIG` stores them in the inbox of CONFIG's database, runs the real
service once (`run_once`: process + send) and prints one JSON line per message with the seconds
and the process's RSS high-water mark after it, so a test can bound time and memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import resource
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.pipeline.route import process_inbox_message
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import run_once
from mailflow.store.models import InboxMessage
from tests.corpus.build import Mail, Part, encode_subject
from tests.support.mail_requests import request
from tests.support.pdfs import flate_bomb_pdf, looping_pdf, nested_arrays_pdf, xobject_bomb_pdf

DATE = "Mon, 23 Nov 2026 10:00:00 -0500"
SENDER = "Ana Pérez <ana.perez@example.org>"
BODY = (
    "Nombres y apellidos: Ana Pérez Gómez\nNacionalidad: venezolana\nPasaporte: 123456789\n"
    "Teléfono: +51 987 654 321\n"
)
EVIL = "atacante@evil.example"
QUEUE = frozenset({"review", "set_aside"})  # the exception queue
QUIET = QUEUE | {"ignore"}
NOT_ACCEPTED = QUEUE | {"observe"}  # a hostile PDF never passes as a signed document
# A harmless carrier (a zip nobody opens, a long header) around a complete request may be
# answered like any other request: what matters is bounded work and a clean reply.
ANSWERED = frozenset({"observe", "accept", "review", "inform"})


@dataclass(frozen=True)
class Hostile:
    """One hostile message and the outcomes it may end in."""

    name: str
    raw: bytes
    allowed: frozenset[str]


def _mail(name: str, subject: str, body: str | None = BODY, **kw: object) -> bytes:
    return Mail(
        subject=subject,
        sender=str(kw.pop("sender", SENDER)),
        date=DATE,
        text=body,
        message_id=f"{name}@hostile.example",
        **kw,  # type: ignore[arg-type]
    ).render()


def _with_pdf(name: str, pdf: bytes, subject: str = "Recurso de Reconsideración") -> bytes:
    body = "Motivo: no estoy de acuerdo\n" + BODY + "Correo: ana.perez@example.org\n"
    return _mail(name, subject, body, attachments=(Part("recurso.pdf", "application/pdf", pdf),))


def _nested(depth: int) -> bytes:
    head = f"From: {SENDER}\r\nSubject: Actualización de datos\r\nDate: {DATE}\r\n"
    head += "Message-ID: <nested@hostile.example>\r\nMIME-Version: 1.0\r\n"
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + BODY.encode() + b"\r\n"
    for level in range(depth):
        b = f"n{level}".encode()
        inner = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + inner
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return head.encode("utf-8") + inner


def _zip_bomb(megabytes: int = 100) -> bytes:
    out = io.BytesIO()
    zeros = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("documentos.txt", "w") as f,
    ):
        for _ in range(megabytes):
            f.write(zeros)
    return out.getvalue()


def _raw(name: str, headers: str, body: bytes = b"hola\r\n") -> bytes:
    return (headers + f"Message-ID: <{name}@hostile.example>\r\n\r\n").encode("utf-8") + body


def _html_only(name: str, html: str) -> bytes:
    head = f"From: {SENDER}\r\nSubject: Actualización de datos\r\nDate: {DATE}\r\n"
    head += "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    return _raw(name, head, html.encode("utf-8"))


def _tiny_parts(name: str, count: int) -> bytes:
    head = f"From: {SENDER}\r\nSubject: Actualización de datos\r\nDate: {DATE}\r\n"
    head += 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="t"\r\n'
    part = b"--t\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return _raw(name, head, part * count + b"--t--\r\n")


def quadratic_shapes(scale: int = 1) -> list[tuple[str, bytes]]:
    """Inputs whose cost grew with the square of their size (issue 14): unclosed tags, deep
    inline nesting, a header folded over 240,000 lines, 100,000 tiny parts; `scale` multiplies
    the sizes."""
    folded = f"From: {SENDER}\r\nSubject: Actualización de datos\r\nX-Plegado: a\r\n"
    folded += " b\r\n" * (240_000 * scale)
    return [
        ("html_etiquetas_abiertas", _html_only("html_etiquetas_abiertas", "<a " * 200_000 * scale)),
        (
            "html_anidado_profundo",
            _html_only("html_anidado_profundo", "<b><i><span>" * 100_000 * scale + BODY),
        ),
        (
            "html_tablas_abiertas",
            _html_only("html_tablas_abiertas", "<table><tr><td>" * 50_000 * scale + BODY),
        ),
        ("cabecera_plegada_240k", _raw("cabecera_plegada_240k", folded, BODY.encode())),
        ("partes_diminutas", _tiny_parts("partes_diminutas", 100_000 * scale)),
    ]


def hostile_corpus() -> list[Hostile]:
    """Every hostile message, in a fixed order."""
    crlf_subject = encode_subject(f"Actualización de datos\r\nBcc: {EVIL}\r\nX-Inyectada: sí", "B")
    crlf_name = "=?utf-8?Q?Ana_P=C3=A9rez=0D=0ABcc:_" + EVIL.replace("@", "=40") + "?="
    to_many = ", ".join(f"destino{i}@example.org" for i in range(10_000))
    script = (
        "<html><head><script>alert('x')</script><style>p{}</style></head><body>"
        "<p>Nombres y apellidos: Ana Pérez Gómez<br>Teléfono: +51 987 654 321</p>"
        "<img src=x onerror=alert(1)><iframe src='javascript:alert(2)'></iframe></body></html>"
    )
    items = [
        (
            "mime_truncado",
            _raw(
                "mime_truncado",
                f"From: {SENDER}\r\nSubject: Renuncia\r\n"
                'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n',
                b"--zz\r\nContent-Type: text/plain\r\n\r\nMotivo: me voy\r\n--zz\r\nContent-Type: app",
            ),
            QUIET | ANSWERED,
        ),
        (
            "sin_boundary",
            _raw(
                "sin_boundary",
                f"From: {SENDER}\r\nSubject: Renuncia\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n",
                b"no hay partes\r\n",
            ),
            QUIET | ANSWERED,
        ),
        (
            "inyeccion_asunto",
            _raw(
                "inyeccion_asunto",
                f"From: {SENDER}\r\nTo: mesadepartes@"
                f"cepr.mailflow.localhost\r\nSubject: {crlf_subject}\r\nDate: {DATE}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n",
                BODY.encode(),
            ),
            ANSWERED,
        ),
        (
            "inyeccion_remitente",
            _raw(
                "inyeccion_remitente",
                f"From: {crlf_name} "
                "<ana.perez@example.org>\r\nSubject: Actualización de datos\r\n"
                f"Date: {DATE}\r\nContent-Type: text/plain; charset=utf-8\r\n",
                BODY.encode(),
            ),
            ANSWERED,
        ),
        ("anidado_500", _nested(500), QUIET | ANSWERED),
        (
            "zip_bomba",
            _mail(
                "zip_bomba",
                "Actualización de datos",
                attachments=(Part("documentos.zip", "application/zip", _zip_bomb()),),
            ),
            QUIET | ANSWERED,
        ),
        ("pdf_flate_bomba", _with_pdf("pdf_flate_bomba", flate_bomb_pdf(256)), NOT_ACCEPTED),
        (
            "pdf_xobject_bomba",
            _with_pdf("pdf_xobject_bomba", xobject_bomb_pdf()),
            NOT_ACCEPTED,
        ),
        (
            "pdf_arrays_anidados",
            _with_pdf("pdf_arrays_anidados", nested_arrays_pdf()),
            NOT_ACCEPTED,
        ),
        ("pdf_bucle", _with_pdf("pdf_bucle", looping_pdf()), NOT_ACCEPTED),
        ("pdf_falso", _with_pdf("pdf_falso", b"%PDF-1.7\n" + b"\xff" * 5000), NOT_ACCEPTED),
        (
            "cabecera_1mb",
            _raw(
                "cabecera_1mb",
                f"From: {SENDER}\r\nSubject: Actualización de datos"
                f"\r\nX-Relleno: {'a' * (1 << 20)}\r\n",
                BODY.encode(),
            ),
            QUIET | ANSWERED,
        ),
        (
            "asunto_100kb",
            _raw(
                "asunto_100kb",
                f"From: {SENDER}\r\nSubject: {'Renuncia ' * 12000}\r\n",
                BODY.encode(),
            ),
            QUIET | ANSWERED,
        ),
        (
            "charset_invalido",
            _raw(
                "charset_invalido",
                f"From: {SENDER}\r\nSubject: =?x-klingon?B?"
                "////?=\r\nContent-Type: text/plain; charset=x-klingon-9\r\n",
                b"Nombre: \xff\xfe\xfa Ana\r\n",
            ),
            QUIET | ANSWERED,
        ),
        (
            "html_scripts",
            _mail("html_scripts", "Actualización de datos", body=None, html=script),
            QUIET | ANSWERED,
        ),
        (
            "bytes_nul",
            _raw(
                "bytes_nul",
                f"From: {SENDER}\r\nSubject: Actualizaci\0n de datos\r\nX-Nul: a\0b\r\n",
                b"Nombres y apellidos: Ana\0 P\xe9rez\r\n\0\0\0",
            ),
            QUIET | ANSWERED,
        ),
        (
            "diez_mil_destinatarios",
            _raw(
                "diez_mil_destinatarios",
                f"From: {SENDER}\r\nTo: "
                f"{to_many}\r\nSubject: Actualización de datos\r\nContent-Type: text/plain; "
                "charset=utf-8\r\n",
                BODY.encode(),
            ),
            QUIET | ANSWERED,
        ),
        (
            "mil_partes",
            _mail(
                "mil_partes",
                "Actualización de datos",
                attachments=tuple(Part(f"h{i}.txt", "text/plain", b"x") for i in range(1000)),
            ),
            QUIET | ANSWERED,
        ),
        ("vacio", b"", QUIET),
        ("basura_binaria", bytes(range(256)) * 64, QUIET),
        (
            "base64_roto",
            _raw(
                "base64_roto",
                f"From: {SENDER}\r\nSubject: Renuncia\r\nContent-Transfer-Encoding: base64\r\n",
                b"@@@" + base64.b64encode(b"x" * 99)[5:],
            ),
            QUIET | ANSWERED,
        ),
    ]
    items += [(name, raw, QUIET | ANSWERED) for name, raw in quadratic_shapes()]
    items += _containers()
    return [Hostile(name, raw, allowed) for name, raw, allowed in items]


def _signed_data(payload: bytes) -> bytes:
    """Opaque CMS signed-data around `payload` (no signer: intake never verifies S/MIME)."""
    from asn1crypto import cms

    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data", "content": payload},
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def _containers() -> list[tuple[str, bytes, frozenset[str]]]:
    """Containers opened by intake (issue 13): nested S/MIME, a winmail.dat flood, and many
    unlabelled 8-bit text parts (charset detection is bounded per message)."""
    from tests.support.intake_mail import tnef

    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + BODY.encode()
    for _ in range(12):
        der = base64.encodebytes(_signed_data(inner))
        inner = (
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + der
        )
    head = f"From: {SENDER}\r\nSubject: Actualización de datos\r\nDate: {DATE}\r\n"
    flood = tnef(BODY, [(f"f{i}.pdf", b"%PDF-1.4 " + bytes(64)) for i in range(20_000)])
    noise = bytes(range(128, 256)) * 256
    return [
        ("smime_anidado_12", head.encode() + inner, QUIET | ANSWERED),
        (
            "winmail_20000_adjuntos",
            _mail(
                "winmail_20000_adjuntos",
                "Actualización de datos",
                attachments=(Part("winmail.dat", "application/ms-tnef", flood),),
            ),
            QUIET | ANSWERED,
        ),
        (
            "texto_8bit_sin_charset",
            _raw(
                "texto_8bit_sin_charset",
                head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
                b"".join(
                    b"--b\r\nContent-Type: text/plain\r\n\r\n" + noise + b"\r\n" for _ in range(150)
                )
                + b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                + BODY.encode()
                + b"\r\n--b--\r\n",
            ),
            QUIET | ANSWERED,
        ),
    ]


def _rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run(config: Path, corpus: list[Hostile]) -> Iterator[dict[str, object]]:
    """Store `corpus` and one ordinary request, run the service once, report each message."""
    app = App(load_settings(config, env={}))
    app.database.migrate()
    now = dt.datetime.now(dt.UTC)
    names: dict[int, str] = {}
    with app.database.session() as session:
        for item in [*corpus, Hostile("ordinario", request(0), ANSWERED)]:
            row = store_raw(session, item.raw, mailbox="mesadepartes", source="smtp", now=now)
            assert row is not None, item.name
            session.flush()
            names[row.id] = item.name
    report: list[dict[str, object]] = []

    def timed(app_: App, session: Session, row: InboxMessage, at: dt.datetime) -> None:
        started = time.perf_counter()
        try:
            process_inbox_message(app_, session, row, at)
        finally:
            seconds = time.perf_counter() - started
            name = names[row.id]
            report.append({"name": name, "seconds": round(seconds, 3), "rss_kib": _rss_kib()})

    stats = run_once(app, process=timed)
    yield from report
    yield {"name": "_run", "sent": stats.sent, "errors": stats.errors, "rss_kib": _rss_kib()}


def main() -> None:
    corpus = hostile_corpus()
    print(json.dumps({"name": "_start", "rss_kib": _rss_kib()}), flush=True)
    for line in run(Path(sys.argv[1]), corpus):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
