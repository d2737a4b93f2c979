"""The parsed form of one email: what every later stage reads instead of raw MIME."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from mailflow.mail.defects import Defect


@dataclass(frozen=True)
class Attachment:
    """One attached file, decoded."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        """Size of the decoded file, in bytes."""
        return len(self.data)

    @property
    def sha256(self) -> str:
        """SHA-256 of the decoded file, lower-case hex (64 characters)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_pdf(self) -> bool:
        """True when declared application/pdf, named *.pdf, or starting with the %PDF- magic bytes."""
        return (
            self.content_type == "application/pdf"
            or self.filename.lower().endswith(".pdf")
            or self.data[:5] == b"%PDF-"
        )


@dataclass(frozen=True)
class ParsedMessage:
    """Headers, decoded text and attachments of one message; the raw bytes stay untouched."""

    raw: bytes
    message_id: str | None = None
    subject: str = ""
    sender: str = ""  # address, lower-cased; "" when absent or unparseable
    sender_name: str = ""
    to: tuple[str, ...] = ()
    date: dt.datetime | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case name
    content_type: str = "text/plain"
    text: str = ""  # text/plain, or HTML converted to text
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[Defect, ...] = ()  # problems found while parsing: code + Spanish text
    enclosed: tuple[str, ...] = ()  # texts of attached messages and containers (winmail.dat)

    def header(self, name: str) -> str:
        """First value of a header (case-insensitive), or ""."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def sha256(self) -> str:
        """SHA-256 of the raw message bytes, lower-case hex (64 characters)."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def pdfs(self) -> tuple[Attachment, ...]:
        """The attachments that are PDFs (`Attachment.is_pdf`), in message order."""
        return tuple(a for a in self.attachments if a.is_pdf)
