"""Compose reply messages: Spanish text + HTML alternative, attachments, threading, RFC 3834."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from typing import Any

import jinja2

SUBJECT_WHAT: dict[str, str] = {
    "acuse_recibo": "Acuse de recibo",
    "observacion": "Observación: falta información",
    "subsanacion_recibida": "Subsanación recibida",
    "cargo_enviado": "Cargo de recepción",
    "no_presentado": "Solicitud no presentada",
    "admitido": "Admitida a trámite",
    "rechazado": "Solicitud no aprobada",
    "improcedente": "Declarada improcedente",
    "resuelto": "Trámite resuelto",
    "oficio_enviado": "Copia del oficio a Migraciones",
    "informativo": "Información sobre su trámite",
    "subsanacion_incompleta": "Observación: aún falta información",
    "acuse_registro": "Acuse de recibo",
    "otro_canal": "Trámite atendido por otro canal",
    "mensaje_agregado": "Mensaje añadido a su expediente",
    "reenvio_recibido": "Su solicitud ya está registrada",
    "estado_expediente": "Estado de su expediente",
}
MAX_REFERENCES = 20


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, keeping the class it builds for each header name
    (the stdlib builds a new class for every header set, a large part of composing)."""

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = super().__getitem__(name)
        return built


POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


@dataclass(frozen=True)
class Thread:
    """The applicant's message we answer and the chain before it (bare Message-IDs, no <>)."""

    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A file to attach to a reply."""

    filename: str
    data: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Reply:
    """Everything a reply message is built from."""

    case_number: str
    tramite_name: str
    template: str
    text: str
    from_addr: str
    from_name: str
    to_addr: str
    to_name: str
    dedupe_key: str
    domain: str
    thread: Thread = Thread()
    attachments: Sequence[Attachment] = field(default_factory=tuple)
    nonce: str = ""  # 12 random hex digits drawn once when queued: Message-IDs not guessable


def render_text(env: jinja2.Environment, template: str, context: Mapping[str, Any]) -> str:
    """Render `templates/replies/<template>.txt.j2`, with runs of blank lines squeezed."""
    text = env.get_template(f"replies/{template}.txt.j2").render(**context)
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.rstrip()
        if stripped or (lines and lines[-1]):
            lines.append(stripped)
    return "\n".join(lines).strip() + "\n"


def subject_for(case_number: str, tramite_name: str, template: str) -> str:
    """`[EXP-2026-000123] Actualización de datos: Acuse de recibo`."""
    what = SUBJECT_WHAT.get(template, template.replace("_", " ").capitalize())
    return f"[{case_number}] {tramite_name}: {what}"


def message_id_for(case_number: str, dedupe_key: str, domain: str, nonce: str = "") -> str:
    """A bare Message-ID (no <>): the same for the same reply and nonce (RFC 5322 §3.6.4).

    The nonce (random, drawn once when the reply is queued and kept with the outbox row's
    bytes) makes it unpredictable; resends reuse the stored bytes, so the Message-ID of a
    reply never changes.
    """
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:20]
    if nonce:  # same length as without: a References line stays within 78 characters
        digest = digest[:8] + nonce[:12]
    return f"mf.{case_number.lower()}.{digest}@{domain}"


def text_to_html(text: str) -> str:
    """The same text as simple HTML: escaped, one <p> per paragraph, <br> inside paragraphs."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html lang="es"><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: Arial, sans-serif; font-size: 14px;">\n{body}\n</body></html>\n'
    )


def _address(name: str, addr: str) -> str:
    if not name:
        return addr
    return email.utils.formataddr((name, addr), charset="utf-8")


def _references(thread: Thread) -> list[str]:
    refs = list(dict.fromkeys(r for r in thread.references if r))
    if thread.in_reply_to and thread.in_reply_to not in refs:
        refs.append(thread.in_reply_to)
    if len(refs) > MAX_REFERENCES:  # keep the first (thread root) and the most recent ones
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    return refs


def compose(reply: Reply, now: dt.datetime) -> EmailMessage:
    """The reply as a MIME message (UTF-8), ready for the outbox."""
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = subject_for(reply.case_number, reply.tramite_name, reply.template)
    msg["From"] = _address(reply.from_name, reply.from_addr)
    msg["To"] = _address(reply.to_name, reply.to_addr) if "@" in reply.to_addr else reply.to_addr
    msg["Date"] = email.utils.format_datetime(now)
    bare = message_id_for(reply.case_number, reply.dedupe_key, reply.domain, reply.nonce)
    msg["Message-ID"] = f"<{bare}>"
    if reply.thread.in_reply_to:
        msg["In-Reply-To"] = f"<{reply.thread.in_reply_to}>"
    refs = _references(reply.thread)
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Mailflow-Case"] = reply.case_number
    msg.set_content(reply.text, charset="utf-8")
    msg.add_alternative(text_to_html(reply.text), subtype="html", charset="utf-8")
    for att in reply.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=att.filename)
    return msg


def sender_address(mailboxes: Sequence[Any], mailbox: str | None, domain: str) -> str:
    """The address of the procedure's mailbox (settings.mailboxes by name), or a default."""
    for box in mailboxes:
        if box.name == mailbox:
            return str(box.address)
    if mailboxes:
        return str(mailboxes[0].address)
    return str(Address(username=mailbox or "mesadepartes", domain=domain).addr_spec)
