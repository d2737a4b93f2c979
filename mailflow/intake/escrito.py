"""Which attachment is the escrito (the written request), and whether its signer is the applicant."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailflow.mail.message import Attachment
from mailflow.textnorm import fold
from mailflow.vocabulary import SignatureStatus as S

if TYPE_CHECKING:  # pyhanko and pypdf load only where signatures and PDFs are read
    from mailflow.intake.catalogue import Tramite
    from mailflow.intake.pdftext import PdfContent
    from mailflow.intake.signatures import SignatureReport, Signer

IMAGE_TYPES = ("image/jpeg", "image/png", "image/heic", "image/heif", "image/tiff", "image/webp")
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".tif", ".tiff", ".webp")
# Words an escrito carries whatever the procedure: the request itself and its addressee.
_REQUEST_WORDS = (
    "solicito",
    "interpongo",
    "presento",
    "recurso",
    "renuncia",
    "renuncio",
    "escrito",
    "senor presidente",
    "comision especial",
    "atentamente",
    "por medio del presente",
)
_NAME_EXT = ("escrito", "solicitud", "recurso", "firmad", "renuncia", "carta", "apelacion")
_PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "da", "dos", "van", "von"})
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")  # an image XObject: what a scanner produces
_MIN_TEXT = 20  # characters of text below which a PDF is a scanned image


@dataclass(frozen=True)
class Document:
    """One attached file as intake examined it."""

    attachment: Attachment
    content: PdfContent | None  # None: not a PDF
    report: SignatureReport | None  # None: not a PDF or not verified
    kind: str  # "escrito", an attachment field id (e.g. "denuncia_policial"), or "otro"

    @property
    def name(self) -> str:
        """The attachment's file name, or 'adjunto' when it has none."""
        return self.attachment.filename or "adjunto"

    @property
    def unreadable(self) -> str | None:
        """Why a machine cannot read this file (Spanish), or None when its text was read."""
        att = self.attachment
        if self.content is None:
            if is_image(att):
                return "es una foto o imagen"
            return None
        if self.content.encrypted:
            return "es un PDF protegido con contraseña"
        scanned = self.content.error is None and len(self.content.text.strip()) < _MIN_TEXT
        if scanned and not self.content.form_fields:
            return "es un PDF sin texto legible (escaneado o solo imagen)"
        return None


def is_image(att: Attachment) -> bool:
    """True for photos and scans sent as image files (JPEG, PNG, HEIC, TIFF, WebP)."""
    name = att.filename.lower()
    return att.content_type in IMAGE_TYPES or name.endswith(_IMAGE_EXT)


def looks_like_escrito(
    tramite: Tramite, content: PdfContent | None, filename: str, data: bytes = b""
) -> bool:
    """Whether a PDF carries the request: its text names the procedure or says a request phrase
    ("interpongo", "solicito", "Señor Presidente"…); a scanned page (an image and no text)
    counts too: it is most often the escrito signed by hand. A text-less PDF without any image
    is not a scan (hostile or empty files are not escritos); a password-protected one counts
    when its file name says so ("escrito", "solicitud", "recurso firmado")."""
    name = fold(filename)
    named = any(word in name for word in _NAME_EXT) or fold(tramite.name) in name
    if content is None or content.encrypted:
        return content is not None and named
    text = fold(content.text[:20_000])
    if len(text.strip()) < _MIN_TEXT:
        return not content.form_fields and _IMAGE.search(data) is not None
    phrases = (tramite.name, tramite.subject, *tramite.aliases, *tramite.body_keywords)
    if any(fold(p) in text for p in phrases):
        return True
    return any(word in text for word in _REQUEST_WORDS)


def signer_is(signer: Signer, name: str | None, numbers: Iterable[str]) -> bool:
    """Whether a certificate names this person: by name (accents, order, case and middle names
    ignored; every word of the shorter name must appear in the longer one, at least two words),
    or by a document or carné number carried in the subject's serialNumber or common name."""
    digits = [re.sub(r"\D", "", n) for n in numbers]
    for field in (signer.serial_number, signer.common_name):
        found = re.sub(r"\D", "", field or "")
        if len(found) >= 5 and any(len(d) >= 5 and (d in found or found in d) for d in digits):
            return True
    if not name or not signer.common_name:
        return False
    return same_person(signer.common_name, name)


def same_person(one: str, other: str) -> bool:
    """Tolerant comparison of two people's names (see `signer_is`)."""
    a, b = _words(one), _words(other)
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) < 2:
        return False
    return sum(1 for word in short if word in long_) == len(short)


def _words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", fold(name)) if w not in _PARTICLES and len(w) > 1}


def pick_escrito(documents: Sequence[Document]) -> Document | None:
    """The escrito among the documents: a validly signed one first, then any signed, then any."""
    escritos = [d for d in documents if d.kind == "escrito"]
    order = {S.VALID: 0, S.UNTRUSTED: 1, S.INVALID: 2, S.UNSIGNED: 3}
    escritos.sort(key=lambda d: order.get(d.report.status if d.report else S.UNSIGNED, 4))
    return escritos[0] if escritos else None
