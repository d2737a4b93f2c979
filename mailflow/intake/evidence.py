"""Evidence for intake: what a message holds for a procedure — field values, documents and
their kinds, the escrito and its signature. Pure apart from reading the attached PDFs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import x509

from mailflow.intake.catalogue import Tramite
from mailflow.intake.decision import SignatureSummary
from mailflow.intake.escrito import Document, looks_like_escrito, signer_is
from mailflow.intake.fields import (
    FieldValue,
    FieldVocabulary,
    detect_refugiado,
    extract_fields,
    extract_pdf_form_fields,
)
from mailflow.intake.forwards import request_body
from mailflow.intake.pdflibs import SIGNATURES, preload
from mailflow.intake.pdftext import PdfContent, read_pdf
from mailflow.intake.values import normalise
from mailflow.mail.message import Attachment, ParsedMessage
from mailflow.vocabulary import SignatureStatus

MAX_PDFS_READ = 10  # PDFs read (text, form fields, signatures) per message; the rest go to staff
_TOO_MANY_PDFS = f"no se leyó: el mensaje trae más de {MAX_PDFS_READ} PDF"


@dataclass(frozen=True)
class Evidence:
    """What was read from the message: field values by id and where they came from."""

    values: dict[str, FieldValue]
    documents: tuple[Document, ...]
    refugiado: bool


def read_evidence(
    tramite: Tramite,
    msg: ParsedMessage,
    body: str,
    *,
    vocabulary: FieldVocabulary,
    trust_roots: Sequence[x509.Certificate],
    max_pdf_pages: int,
    pdf_seconds: float,
) -> Evidence:
    """Read what `msg` holds for `tramite`: field values from `body` (the request text), the
    enclosed messages, the PDFs' text and form fields; each attachment's kind; the PDFs'
    signatures when the procedure requires one; the sender's address as "correo". At most
    MAX_PDFS_READ PDFs are read, each bounded by `max_pdf_pages` pages and `pdf_seconds`
    seconds; the first valid value per field wins. Does not raise for hostile input.
    """
    wanted = set(tramite.all_fields())
    merged: dict[str, FieldValue] = {}
    texts = [body]
    merge_values(merged, extract_fields(body, vocabulary, wanted, source="cuerpo"))
    for index, enclosed in enumerate(msg.enclosed, 1):
        inner = request_body(enclosed, msg.sender, msg.sender_name)
        texts.append(inner)
        source = f"mensaje-adjunto-{index}"
        merge_values(merged, extract_fields(inner, vocabulary, wanted, source=source))
    documents: list[Document] = []
    pdfs_read = 0
    for att in msg.attachments:
        if att.is_pdf and pdfs_read >= MAX_PDFS_READ:
            content: PdfContent | None = PdfContent(error=_TOO_MANY_PDFS)
        elif att.is_pdf:
            pdfs_read += 1
            content = read_pdf(att.data, max_pages=max_pdf_pages, seconds=pdf_seconds)
        else:
            content = None
        if content is not None and not content.error:
            texts.append(content.text)
            source = f"pdf:{att.filename}"
            found = extract_fields(content.text, vocabulary, wanted, source=source)
            merge_values(merged, found)
            if content.form_fields:
                form = extract_pdf_form_fields(
                    content.form_fields, vocabulary, f"formulario:{att.filename}"
                )
                merge_values(merged, {k: v for k, v in form.items() if k in wanted})
        documents.append(
            Document(att, content, None, attachment_kind(tramite, att, content, vocabulary))
        )
    pdfs = [d for d in documents if d.content is not None and d.content.error != _TOO_MANY_PDFS]
    if tramite.signature_required and pdfs:
        # pyhanko's validation stack (~0.6 s to import) is loaded with the first signed PDF,
        # outside the message's CPU budget (mailflow.intake.pdflibs)
        preload(SIGNATURES)
        from mailflow.intake.signatures import verify_each

        reports = verify_each(
            [(d.attachment.filename, d.attachment.data) for d in pdfs], trust_roots
        )
        checked = {id(d): r for d, r in zip(pdfs, reports, strict=True)}
        documents = [dataclasses.replace(d, report=checked.get(id(d))) for d in documents]
    if "correo" in wanted and "correo" not in merged and msg.sender:
        value, error = normalise("email", msg.sender)
        merged["correo"] = FieldValue(msg.sender, value, error, "remitente")
    for att_field in tramite.required_attachments:
        hit = next((d for d in documents if d.kind == att_field), None)
        if hit is not None:
            name = hit.attachment.filename
            merged[att_field] = FieldValue(name, name, None, "adjunto")
    refugiado = "carne_extranjeria" in merged or any(detect_refugiado(t) for t in texts)
    return Evidence(merged, tuple(documents), refugiado)


def attachment_kind(
    tramite: Tramite, att: Attachment, content: PdfContent | None, vocabulary: FieldVocabulary
) -> str:
    """What an attachment is: a required attachment (by name, then by its text), the
    escrito, or "otro"."""
    text = content.text if content is not None and not content.error else ""
    for field_id in tramite.required_attachments:
        if vocabulary.matches_attachment(field_id, att.filename, text):
            return field_id
    readable = content is not None and (content.error is None or content.encrypted)
    if readable and looks_like_escrito(tramite, content, att.filename, att.data):
        return "escrito"
    return "otro"


def missing_items(tramite: Tramite, fields: dict[str, str], refugiado: bool) -> list[str]:
    """The procedure's required fields (with the refugee-only ones when `refugiado`) and
    attachments not in `fields`, in the catalogue's order, without repeats."""
    required = list(tramite.required_fields)
    required += [c.field for c in tramite.conditional_fields if refugiado]
    required += list(tramite.required_attachments)
    return [f for f in dict.fromkeys(required) if f not in fields]


def escrito_signature(
    tramite: Tramite,
    documents: tuple[Document, ...],
    escrito: Document | None,
    trust_roots: Sequence[x509.Certificate],
) -> SignatureSummary:
    """The escrito's signature when the procedure requires one (every PDF is verified, the
    escrito's counts); otherwise the worst signature among the PDFs, as before."""
    pdfs = [d for d in documents if d.attachment.is_pdf]
    if not pdfs:
        return SignatureSummary(SignatureStatus.ABSENT, reason="No se adjuntó ningún documento PDF")
    if tramite.signature_required and escrito is not None and escrito.report is not None:
        report = escrito.report
    elif tramite.signature_required and escrito is None:
        signed = [d for d in pdfs if d.report and d.report.status != SignatureStatus.UNSIGNED]
        if not signed:
            names = ", ".join(d.name for d in pdfs)
            return SignatureSummary(
                SignatureStatus.UNSIGNED,
                reason=f"ningún PDF adjunto es el escrito firmado ({names})",
            )
        report = signed[0].report  # type: ignore[assignment]
    else:
        preload(SIGNATURES)  # see verify_each above
        from mailflow.intake.signatures import verify_attachments

        report = verify_attachments(
            [(d.attachment.filename, d.attachment.data) for d in pdfs], trust_roots
        )
    assert report is not None
    return SignatureSummary(report.status, report.signer, report.reason, report.filename)


def rank_escritos(
    documents: tuple[Document, ...], fields: Mapping[str, str], sender_name: str
) -> tuple[Document, ...]:
    """Escritos signed by the applicant first (co-signed ones included), then the rest."""
    name = fields.get("nombres_apellidos") or sender_name or None
    numbers = [fields.get(k, "") for k in ("documento_identidad", "carne_extranjeria")]

    def own(doc: Document) -> int:
        signers = doc.report.signers if doc.report else ()
        return 0 if any(signer_is(s, name, numbers) for s in signers) else 1

    return tuple(sorted(documents, key=own))


def merge_values(into: dict[str, FieldValue], new: dict[str, FieldValue]) -> None:
    """Add `new` to `into` in place: the first valid value per field is kept; a valid value
    replaces an invalid one."""
    for key, value in new.items():
        prior = into.get(key)
        if prior is None or (prior.error is not None and value.error is None):
            into[key] = value
