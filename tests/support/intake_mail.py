"""Builders for the intake-kind tests: mail as Outlook, Gmail and phones shape it."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from mailflow.documents.pki import Identity

Attachment = tuple[str, str, bytes]  # file name, content type, bytes


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "Ana María Torres Ruiz <ana.torres@example.com>",
    attachments: Sequence[Attachment] = (),
    html: str | None = None,
) -> bytes:
    """A plain (or HTML) request with attachments, UTF-8, as a phone or webmail sends it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "mesadepartes@cepr.example"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 02 Jun 2026 09:12:44 -0500"
    msg["Message-ID"] = f"<{abs(hash((subject, body))) % 10**12}@example.com>"
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    for name, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(policy=SMTP)


def with_enclosed(subject: str, note: str, inner: bytes, *, sender: str) -> bytes:
    """`inner` attached as message/rfc822 below a covering note (Outlook "forward as attachment")."""
    from email import message_from_bytes
    from email.policy import default

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "mesadepartes@cepr.example"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 02 Jun 2026 09:12:44 -0500"
    msg.set_content(note)
    msg.add_attachment(message_from_bytes(inner, policy=default))
    return msg.as_bytes(policy=SMTP)


def tnef(body: str, files: Sequence[tuple[str, bytes]]) -> bytes:
    """A minimal winmail.dat (MS-OXTNEF): version, plain body, attachments with title and data."""

    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        head = struct.pack("<BHHI", level, name, kind, len(data))
        return head + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = [struct.pack("<IH", 0x223E9F78, 0x0101)]
    out.append(attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000)))
    out.append(attribute(1, 0x800C, 0x0002, body.encode("cp1252")))
    for name, data in files:
        out.append(attribute(2, 0x9002, 0x0006, struct.pack("<HiiIH", 1, -1, -1, 0, 0)))
        out.append(attribute(2, 0x8010, 0x0001, name.encode("cp1252") + b"\x00"))
        out.append(attribute(2, 0x800F, 0x0006, data))
    return b"".join(out)


def winmail(subject: str, body: str, files: Sequence[tuple[str, bytes]], *, sender: str) -> bytes:
    """Outlook with rich text: a short plain body plus everything inside winmail.dat."""
    return mail(
        subject,
        body,
        sender=sender,
        attachments=[("winmail.dat", "application/ms-tnef", tnef(body, files))],
    )


def smime_opaque(inner: bytes, signer: Identity, *, sender: str, subject: str) -> bytes:
    """`inner` (a MIME entity) wrapped as opaque S/MIME signed-data (application/pkcs7-mime)."""
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(inner)
        .add_signer(signer.cert, signer.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "mesadepartes@cepr.example"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 02 Jun 2026 09:12:44 -0500"
    msg.set_content(
        der,
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": "signed-data", "name": "smime.p7m"},
        disposition="attachment",
        filename="smime.p7m",
    )
    return msg.as_bytes(policy=SMTP)


def mime_entity(body: str, attachments: Sequence[Attachment] = ()) -> bytes:
    """A bare MIME entity (no envelope headers), as S/MIME signs it."""
    msg = EmailMessage()
    msg.set_content(body)
    for name, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    del msg["MIME-Version"]
    return msg.as_bytes(policy=SMTP)


def raw(headers: Sequence[bytes], body: bytes) -> bytes:
    """Bytes exactly as given: for 8-bit and damaged headers no library would write."""
    return b"\r\n".join(headers) + b"\r\n\r\n" + body
