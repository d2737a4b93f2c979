"""Test helpers that build, sign and tamper with PDFs."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Mapping, Sequence

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from mailflow.documents.pki import Identity, make_signer


def make_pdf(
    text_lines: Sequence[str],
    form_fields: Mapping[str, str] | None = None,
    *,
    checkboxes: Mapping[str, bool] | None = None,
) -> bytes:
    """A one-page A4 PDF with `text_lines`, optional AcroForm text fields and checkboxes."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=True, pageCompression=0)
    y = 800.0
    for line in text_lines:
        pdf.drawString(60, y, line)
        y -= 16
    for name, value in (form_fields or {}).items():
        y -= 30
        pdf.acroForm.textfield(name=name, value=value, x=60, y=y, width=300, height=20)
    for name, checked in (checkboxes or {}).items():
        y -= 30
        pdf.acroForm.checkbox(name=name, checked=checked, x=60, y=y, size=16)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def scanned_pdf(width: int = 120, height: int = 160) -> bytes:
    """A one-page PDF holding only an image, as a phone scanner app makes it (no text)."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=True)
    pdf.drawImage(ImageReader(Image.new("L", (width, height), 200)), 40, 400, width, height)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def sign_pdf(
    pdf: bytes,
    identity: Identity,
    chain: Sequence[Identity] = (),
    *,
    field_name: str = "Firma1",
) -> bytes:
    """Sign `pdf` as an incremental update with `identity`, embedding `chain`."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(field_name=field_name, reason="Presento mi recurso")
    output = signers.PdfSigner(meta, signer=make_signer(identity, chain)).sign_pdf(writer)
    return bytes(output.getvalue())


def tamper_signed_range(signed: bytes) -> bytes:
    """(a) Change one character of the page text inside the signed range, keeping the length."""
    match = re.search(rb"\(((?:[^()\\]|\\.)+)\) Tj", signed)  # uncompressed page text of make_pdf
    if match is None:
        raise ValueError("no page text to tamper with")
    content = bytearray(signed)
    content[match.start(1)] ^= 0x01
    return bytes(content)


def tamper_incremental_update(signed: bytes, new_text: str = "Texto cambiado") -> bytes:
    """(b) Append an incremental update that replaces the first page's content after signing."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=_page_text(new_text))
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def tamper_append_garbage(signed: bytes) -> bytes:
    """(c) Append bytes after the final %%EOF."""
    return signed + b"\n% texto agregado despues de firmar\nBT /F1 12 Tf (falso) Tj ET\n"


def encrypted_pdf(text_lines: Sequence[str], password: str = "secreto") -> bytes:
    """A PDF that needs a user password to open."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(text_lines))))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def flate_bomb_pdf(megabytes: int = 2048) -> bytes:
    """A hand-built PDF whose page content inflates to `megabytes` MiB of zeros."""
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(megabytes)]
    bomb = b"".join(parts) + compressor.flush()
    return _assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream",
            _HELVETICA,
        ]
    )


def xobject_bomb_pdf(depth: int = 12, fan_out: int = 10, pages: int = 1) -> bytes:
    """Pages whose form XObjects each draw the next one `fan_out` times: fan_out**depth draws."""
    first_form = 4
    content, font = first_form + depth, first_form + depth + 1
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join([b"3 0 R"] * pages), pages),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R"
        b" /Resources << /XObject << /X %d 0 R >> /Font << /F1 %d 0 R >> >> >>"
        % (content, first_form, font),
    ]
    for level in range(depth):
        body = b"BT /F1 12 Tf (nivel) Tj ET " + b"/X Do " * fan_out
        inner = (
            b"/XObject << /X %d 0 R >> " % (first_form + level + 1) if level < depth - 1 else b""
        )
        objects.append(
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << %s/Font << /F1 %d 0 R >> >>"
            b" /Length %d >>\nstream\n" % (inner, font, len(body)) + body + b"\nendstream"
        )
    page = b"/X Do"
    objects.append(b"<< /Length %d >>\nstream\n" % len(page) + page + b"\nendstream")
    objects.append(_HELVETICA)
    return _assemble(objects)


def nested_arrays_pdf(depth: int = 100_000) -> bytes:
    """A PDF whose form field value is an array nested `depth` levels deep."""
    nested = b"[" * depth + b"(x)" + b"]" * depth
    return _assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /FT /Tx /T (campo) /V " + nested + b" >>",
        ]
    )


_HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def looping_pdf() -> bytes:
    """A hand-built PDF whose page tree points back at itself and whose contents loop."""
    return _assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents [3 0 R] >>",
            b"<< /FT /Tx /T (campo) /Kids [4 0 R] /Parent 4 0 R >>",
        ]
    )


def raw_pdf(content: bytes, field_value: bytes | None = None) -> bytes:
    """A hand-built one-page PDF with page `content` and an optional text field's raw value."""
    form = b" /AcroForm << /Fields [6 0 R] >>" if field_value is not None else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R%s >>" % form,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        _HELVETICA,
    ]
    if field_value is not None:
        objects.append(b"<< /FT /Tx /T (campo) /V " + field_value + b" >>")
    return _assemble(objects)


def _page_text(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 12 Tf 60 800 Td ({escaped}) Tj ET".encode("latin-1")


def _assemble(objects: Sequence[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
