"""Compose reply messages: Spanish text + HTML alternative, attachments, threading, RFC 3834."""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.utils
import functools
import hashlib
import html
import random
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.contentmanager import _encode_text  # type: ignore[attr-defined]  # stdlib, private
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


@dataclass(frozen=True)
class Composed:
    """A composed reply: its bytes (as `EmailMessage.as_bytes()` writes them, "\n" line ends)
    and its top-level header values (unfolded, decoded), by lower-case header name."""

    raw: bytes
    headers: Mapping[str, str]

    def __getitem__(self, name: str) -> str | None:
        """The header's value (e.g. `["Message-ID"]` → "<…>"), None when absent."""
        return self.headers.get(name.lower())

    def as_bytes(self) -> bytes:
        """The message as bytes, ready for the outbox."""
        return self.raw


_PLAIN_HEADER = re.compile(r"[!#-'*-[\]-~](?:[ !#-'*-[\]-~]*[!#-'*-[\]-~])?")
"""A header value written as is: printable ASCII without quotes, backslashes or parentheses
(anything else goes through the stdlib's parser and folder)."""


@functools.lru_cache(maxsize=4096)
def _header(name: str, value: str) -> tuple[str, str]:
    """(`name: value` folded as POLICY writes it with its line end, the decoded value).

    A short plain value is its own folding; anything else (non-ASCII, long, quoted) goes
    through POLICY's header classes once and is remembered (senders, subjects, names repeat).
    """
    if (
        len(name) + len(value) <= 76
        and _PLAIN_HEADER.fullmatch(value)
        and "=?" not in value
        and "  " not in value
    ):
        return f"{name}: {value}\n", value
    header = POLICY.header_factory(name, value)
    return header.fold(policy=POLICY), str(header)


_MASKABLE = re.compile(r"[A-Za-z0-9._%+@-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def _header_with(name: str, value: str, variable: str) -> tuple[str, str]:
    """`_header(name, value)` where `variable` (a case number, an address) changes from one
    reply to the next: folded once with its letters and digits masked as "0" (the same length
    and character class: the same folding, RFC 2047 words included), then put back; the rest
    of the value (a procedure's name, a person's name) is what the cache keeps."""
    if variable and _MASKABLE.fullmatch(variable) and value.count(variable) == 1:
        masked = _ALNUM.sub("0", variable)
        template = value.replace(variable, masked)
        if template.count(masked) == 1:
            folded, decoded = _header(name, template)
            if folded.count(masked) == 1 and decoded.count(masked) == 1:
                return folded.replace(masked, variable), decoded.replace(masked, variable)
    return _header(name, value)


_SAMPLE_BOUNDARY = "=" * 15 + "0" * 19 + "=="
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def _boundary(text: bytes) -> str:
    """A boundary as the stdlib's generator draws it (15 "=", random digits, "=="), changed
    the same way in the (unlikely) case that a line of `text` is already that boundary."""
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="
    if (b"\n" + text).find(b"\n--" + boundary.encode("ascii")) < 0:
        return boundary
    b, counter = boundary, 0
    while re.search(b"^--" + re.escape(b.encode("ascii")) + b"(--)?$", text, re.MULTILINE):
        b, counter = f"{boundary}.{counter}", counter + 1
    return b


def _multipart(subtype: str, parts: Sequence[bytes]) -> tuple[str, bytes]:
    """(the Content-Type header line, the body) of a multipart with `parts`, as the stdlib's
    generator writes them (its boundary: 15 "=", 19 random digits, "==", unique in the text)."""
    boundary = _boundary(b"\n".join(parts))
    value = f'multipart/{subtype}; boundary="{boundary}"'
    if len(boundary) == len(_SAMPLE_BOUNDARY):  # the usual case: same folding as the sample
        sample = _header("Content-Type", value.replace(boundary, _SAMPLE_BOUNDARY))[0]
        line = sample.replace(_SAMPLE_BOUNDARY, boundary)
    else:
        line = _header("Content-Type", value)[0]
    dash = f"--{boundary}".encode("ascii")
    body = dash + b"\n" + (b"\n" + dash + b"\n").join(parts) + b"\n" + dash + b"--\n"
    return line, body


def _text_part(text: str, subtype: str, mime_version: bool) -> bytes:
    """A UTF-8 text part as `set_content` + the generator write it: the body encoding (7bit,
    8bit, quoted-printable or base64) is chosen by the stdlib's own function for that
    (email.contentmanager._encode_text, private; tests/mail/test_outgoing_fast.py pins the bytes)."""
    cte, payload = _encode_text(text, "utf-8", None, POLICY)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n' + (
        "MIME-Version: 1.0\n" if mime_version else ""
    )
    return (head + "\n").encode("ascii") + payload.encode("ascii", "surrogateescape")


_PLAIN_TYPE = re.compile(r"[a-z0-9.+-]+/[a-z0-9.+-]+")
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9._-]+")


def _attachment_part(att: Attachment) -> bytes:
    disposition = f'Content-Disposition: attachment; filename="{att.filename}"\n'
    if (
        _PLAIN_TYPE.fullmatch(att.content_type)
        and _PLAIN_FILENAME.fullmatch(att.filename)
        and len(disposition) <= 79
    ):
        head = (
            f"Content-Type: {att.content_type}\nContent-Transfer-Encoding: base64\n"
            f"{disposition}MIME-Version: 1.0\n\n"
        )
        return head.encode("ascii") + base64.encodebytes(att.data)
    part = EmailMessage(policy=POLICY)  # unusual type or file name: the stdlib writes it
    maintype, _, subtype = att.content_type.partition("/")
    part.set_content(att.data, maintype=maintype, subtype=subtype, filename=att.filename)
    return part.as_bytes()


def compose_fast(reply: Reply, now: dt.datetime) -> Composed:
    """The reply exactly as `compose(reply, now).as_bytes()` writes it (the same headers,
    folding, RFC 2047 words, body encodings and MIME structure; only the random boundaries
    differ), built without parsing every header again: plain header values are written as
    they are, the others folded once by the stdlib and remembered. Returns a `Composed`
    (raw bytes and header values), for the outbox."""
    values: list[tuple[str, str]] = [
        ("Subject", subject_for(reply.case_number, reply.tramite_name, reply.template)),
        ("From", _address(reply.from_name, reply.from_addr)),
        ("To", _address(reply.to_name, reply.to_addr) if "@" in reply.to_addr else reply.to_addr),
        ("Date", email.utils.format_datetime(now)),
        (
            "Message-ID",
            f"<{message_id_for(reply.case_number, reply.dedupe_key, reply.domain, reply.nonce)}>",
        ),
    ]
    if reply.thread.in_reply_to:
        values.append(("In-Reply-To", f"<{reply.thread.in_reply_to}>"))
    refs = _references(reply.thread)
    if refs:
        values.append(("References", " ".join(f"<{r}>" for r in refs)))
    values += [
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Mailflow-Case", reply.case_number),
    ]
    variable = {"Subject": reply.case_number, "To": reply.to_addr}
    lines: list[str] = []
    headers: dict[str, str] = {}
    for name, value in values:
        line, decoded = _header_with(name, value, variable.get(name, ""))
        lines.append(line)
        headers[name.lower()] = decoded
    lines.append("MIME-Version: 1.0\n")
    headers["mime-version"] = "1.0"
    plain = _text_part(reply.text, "plain", mime_version=False)
    rich = _text_part(text_to_html(reply.text), "html", mime_version=True)
    content_type, body = _multipart("alternative", (plain, rich))
    if reply.attachments:
        alternative = content_type.encode("ascii") + b"\n" + body
        parts = [alternative, *(_attachment_part(att) for att in reply.attachments)]
        content_type, body = _multipart("mixed", parts)
    lines.append(content_type)
    head = "".join(lines).encode("ascii")
    return Composed(raw=head + b"\n" + body, headers=headers)


def sender_address(mailboxes: Sequence[Any], mailbox: str | None, domain: str) -> str:
    """The address of the procedure's mailbox (settings.mailboxes by name), or a default."""
    for box in mailboxes:
        if box.name == mailbox:
            return str(box.address)
    if mailboxes:
        return str(mailboxes[0].address)
    return str(Address(username=mailbox or "mesadepartes", domain=domain).addr_spec)
