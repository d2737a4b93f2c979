"""Reply composition: subject, threading and RFC 3834 headers, text + HTML, attachments."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

from mailflow.config import Mailbox
from mailflow.mail.outgoing import (
    Attachment,
    Reply,
    Thread,
    compose,
    message_id_for,
    sender_address,
    subject_for,
    text_to_html,
)

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _reply(**kw: object) -> Reply:
    base: dict[str, object] = {
        "case_number": "EXP-2026-000123",
        "tramite_name": "Prórroga de residencia",
        "template": "oficio_enviado",
        "text": "Estimada María Ñúñez:\n\nLínea 1 <b>no es HTML</b>\nLínea 2\n\nAtentamente,\n",
        "from_addr": "refugiados@cepr.example",
        "from_name": "Mesa de Partes Virtual - CEPR",
        "to_addr": "maria@example.org",
        "to_name": "María Ñúñez",
        "dedupe_key": "7:42:oficio_enviado",
        "domain": "cepr.example",
    }
    base.update(kw)
    return Reply(**base)  # type: ignore[arg-type]


def _parse(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_threading_and_loop_protection() -> None:
    thread = Thread("req-1@example.org", ("root@example.org", "mf.x@cepr.example"))
    msg = _parse(compose(_reply(thread=thread), NOW))
    assert (
        msg["Subject"] == "[EXP-2026-000123] Prórroga de residencia: Copia del oficio a Migraciones"
    )
    assert msg["From"].addresses[0].display_name == "Mesa de Partes Virtual - CEPR"
    assert msg["To"].addresses[0].display_name == "María Ñúñez"
    assert msg["In-Reply-To"] == "<req-1@example.org>"
    assert msg["References"].split() == [
        "<root@example.org>", "<mf.x@cepr.example>", "<req-1@example.org>",
    ]  # fmt: skip
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Mailflow-Case"] == "EXP-2026-000123"
    assert msg["Precedence"] is None
    assert email.utils.parsedate_to_datetime(msg["Date"]) == NOW


def test_message_id_is_stable_per_dedupe_key() -> None:
    one = compose(_reply(), NOW)["Message-ID"]
    assert one == compose(_reply(), NOW + dt.timedelta(hours=1))["Message-ID"]
    assert one != compose(_reply(dedupe_key="7:43:oficio_enviado"), NOW)["Message-ID"]
    assert one == f"<{message_id_for('EXP-2026-000123', '7:42:oficio_enviado', 'cepr.example')}>"
    assert one.startswith("<mf.exp-2026-000123.") and one.endswith("@cepr.example>")


def test_message_id_carries_the_queued_nonce() -> None:
    one = compose(_reply(nonce="9f3a0c1d2e4b"), NOW)["Message-ID"]
    assert one == compose(_reply(nonce="9f3a0c1d2e4b"), NOW)["Message-ID"]
    assert one != compose(_reply(nonce="000000000000"), NOW)["Message-ID"]
    assert one.endswith("9f3a0c1d2e4b@cepr.example>")
    assert len(one) == len(compose(_reply(), NOW)["Message-ID"])  # no longer than before


def test_plain_and_html_alternatives_and_pdf_attachments() -> None:
    pdf = b"%PDF-1.7 fake"
    msg = _parse(compose(_reply(attachments=(Attachment("oficio.pdf", pdf),)), NOW))
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "María Ñúñez" in plain.get_content() and "<b>no es HTML</b>" in plain.get_content()
    assert "&lt;b&gt;no es HTML&lt;/b&gt;<br>" in html.get_content()
    [att] = list(msg.iter_attachments())
    assert (att.get_filename(), att.get_content_type(), att.get_content()) == (
        "oficio.pdf", "application/pdf", pdf,
    )  # fmt: skip


def test_html_paragraphs_and_subject_fallback() -> None:
    assert text_to_html("a\nb\n\nc").count("<p>") == 2
    assert subject_for("EXP-2026-000001", "Renuncia", "nuevo_aviso") == (
        "[EXP-2026-000001] Renuncia: Nuevo aviso"
    )


def test_sender_is_the_procedures_mailbox() -> None:
    boxes = (
        Mailbox(name="mesadepartes", address="mp@x.pe"),
        Mailbox(name="refugiados", address="r@x.pe"),
    )
    assert sender_address(boxes, "refugiados", "x.pe") == "r@x.pe"
    assert sender_address(boxes, "otro", "x.pe") == "mp@x.pe"
    assert sender_address((), "refugiados", "x.pe") == "refugiados@x.pe"
