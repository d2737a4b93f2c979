"""Sample requests for `mailflow demo`: every procedure, some incomplete, some for staff."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from mailflow.config import Settings
from mailflow.documents.pki import Identity, create_ca, issue_person_certificate, make_signer

APPLICANT_CA = "Entidad de Certificación de Prueba (solicitantes)"


def applicant_identity(keys_dir: Path) -> tuple[Identity, Identity]:
    """A demo CA for applicants' signatures and one applicant certificate (reused if present)."""
    directory = keys_dir / "solicitantes"
    ca = create_ca(directory, APPLICANT_CA, stem="ca-solicitantes")
    person = issue_person_certificate(ca, "María Fernanda López Rojas", directory)
    return ca, person


def signed_pdf(lines: list[str], person: Identity, ca: Identity) -> bytes:
    """A one-page A4 escrito with `lines`, signed by `person` (PAdES, incremental)."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    y = 790.0
    for line in lines:
        pdf.drawString(60, y, line)
        y -= 18
    pdf.showPage()
    pdf.save()
    writer = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()), strict=False)
    meta = signers.PdfSignatureMetadata(field_name="Firma", reason="Presento mi escrito")
    signed = signers.PdfSigner(meta, signer=make_signer(person, [ca])).sign_pdf(writer)
    return bytes(signed.getvalue())


def _message(settings: Settings, mailbox: str, subject: str, body: str) -> EmailMessage:
    address = {m.name: m.address for m in settings.mailboxes}.get(mailbox, f"{mailbox}@localhost")
    msg = EmailMessage()
    msg["From"] = "María Fernanda López Rojas <maria.lopez.demo@example.org>"
    msg["To"] = address
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(body)
    return msg


SIGNED = [
    (
        "mesadepartes",
        "Recurso de Reconsideración",
        "Motivo: no se valoraron las pruebas presentadas en la entrevista.\n"
        "Nombres y apellidos: María Fernanda López Rojas\nPasaporte: 123456789\n"
        "Celular: 987 654 321\nCorreo: maria.lopez.demo@example.org\n",
    ),
    (
        "refugiados",
        "Autorización de viaje",
        "Motivo: visita familiar\nDestino: Colombia\nFecha de salida: 15/12/2026\n"
        "Fecha de retorno: 05/01/2027\nNombres y apellidos: María Fernanda López Rojas\n"
        "Carné de extranjería: 000123456\nCelular: 987654321\n",
    ),
]


def demo_messages(settings: Settings, samples_dir: Path | None, keys_dir: Path) -> Iterator[bytes]:
    """The shipped samples/*.eml plus signed requests made now with the demo applicant's key."""
    if samples_dir is not None and samples_dir.is_dir():
        for path in sorted(samples_dir.glob("*.eml")):
            yield path.read_bytes()
    ca, person = applicant_identity(keys_dir)
    for mailbox, subject, body in SIGNED:
        msg = _message(settings, mailbox, subject, "Señores CEPR:\n\n" + body + "\nAtentamente.\n")
        pdf = signed_pdf([f"Escrito: {subject}", *body.splitlines()], person, ca)
        msg.add_attachment(
            pdf, maintype="application", subtype="pdf", filename="escrito-firmado.pdf"
        )
        yield bytes(msg)
