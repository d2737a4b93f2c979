"""Assemble raw RFC 5322 messages byte by byte, with the encodings real mail clients produce."""

from __future__ import annotations

import base64
import quopri
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CRLF = "\r\n"


@dataclass(frozen=True)
class Part:
    """One attachment: its file name, content type and bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Mail:
    """A message as a mail client would send it; `render()` gives the bytes."""

    subject: str
    sender: str  # full From value, e.g. 'Ana Pérez <ana@gmail.com>'; "" to omit From
    date: str  # RFC 5322 date, fixed so decisions are deterministic
    text: str | None = None
    html: str | None = None
    to: str = "mesadepartes@cepr.mailflow.localhost"
    charset: str = "utf-8"  # charset used to encode the bodies
    declared_charset: str | None = None  # charset label written in the header (mislabelling)
    transfer: str = "quoted-printable"  # 8bit | quoted-printable | base64
    subject_encoding: str | None = None  # None (raw UTF-8 if needed) | "B" | "Q"
    subject_charset: str = "utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: Sequence[Part] = ()
    message_id: str = ""
    mailer: str = ""

    def render(self) -> bytes:
        lines: list[str] = []
        if self.sender:
            lines.append(f"From: {_encode_display(self.sender)}")
        lines.append(f"To: {self.to}")
        lines.append(
            f"Subject: {encode_subject(self.subject, self.subject_encoding, self.subject_charset)}"
        )
        lines.append(f"Date: {self.date}")
        if self.message_id:
            lines.append(f"Message-ID: <{self.message_id}>")
        if self.mailer:
            lines.append(f"X-Mailer: {self.mailer}")
        for name, value in self.headers.items():
            lines.append(f"{name}: {value}")
        lines.append("MIME-Version: 1.0")
        head = (
            CRLF.join(lines).encode("ascii", "surrogateescape")
            if _ascii(lines)
            else (CRLF.join(lines).encode("utf-8"))
        )
        body = self._body()
        return head + CRLF.encode() + body

    def _body(self) -> bytes:
        texts: list[bytes] = []
        if self.text is not None:
            texts.append(self._leaf("text/plain", self.text))
        if self.html is not None:
            texts.append(self._leaf("text/html", self.html))
        if len(texts) == 1:
            core = texts[0]
        elif texts:
            core = multipart("alternative", texts, "alt-" + _tag(self))
        else:
            core = self._leaf("text/plain", "")
        if not self.attachments:
            return core
        parts = [core] + [attachment(p) for p in self.attachments]
        return multipart("mixed", parts, "mix-" + _tag(self))

    def _leaf(self, ctype: str, content: str) -> bytes:
        label = self.declared_charset or self.charset
        data = content.replace("\n", CRLF).encode(self.charset, "replace")
        head = f'Content-Type: {ctype}; charset="{label}"{CRLF}'
        return head.encode() + encode_body(data, self.transfer)


def encode_body(data: bytes, transfer: str) -> bytes:
    """Content-Transfer-Encoding header plus the blank line and the encoded body."""
    if transfer == "base64":
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif transfer == "quoted-printable":
        encoded = quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    else:
        encoded = data
    return f"Content-Transfer-Encoding: {transfer}{CRLF}{CRLF}".encode() + encoded + b"\r\n"


def multipart(kind: str, parts: Sequence[bytes], boundary: str) -> bytes:
    """A multipart entity (headers included) holding already-rendered `parts`."""
    out = [f'Content-Type: multipart/{kind}; boundary="{boundary}"{CRLF}{CRLF}'.encode()]
    for part in parts:
        out.append(f"--{boundary}{CRLF}".encode() + part)
    out.append(f"--{boundary}--{CRLF}".encode())
    return b"".join(out)


def attachment(part: Part) -> bytes:
    """A base64 attachment entity."""
    head = (
        f'Content-Type: {part.content_type}; name="{part.filename}"{CRLF}'
        f'Content-Disposition: attachment; filename="{part.filename}"{CRLF}'
    )
    return head.encode() + encode_body(part.data, "base64")


def encode_subject(subject: str, encoding: str | None, charset: str = "utf-8") -> str:
    """The Subject value: plain, or one RFC 2047 encoded word in `charset`."""
    if encoding is None:
        return subject
    data = subject.encode(charset)
    if encoding.upper() == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    q = "".join(
        chr(b)
        if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
        else ("_" if b == 32 else f"={b:02X}")
        for b in data
    )
    return f"=?{charset}?Q?{q}?="


def _encode_display(sender: str) -> str:
    if "<" not in sender or _ascii([sender]):
        return sender
    name, _, rest = sender.partition("<")
    return f"{encode_subject(name.strip(), 'Q')} <{rest}"


def _ascii(lines: Sequence[str]) -> bool:
    return all(line.isascii() for line in lines)


def _tag(mail: Mail) -> str:
    return f"{zlib.crc32((mail.subject + mail.date + mail.sender).encode()):010d}"
