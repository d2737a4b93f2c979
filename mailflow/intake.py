"""Intake: from a parsed message to a Decision, the way an experienced clerk would decide."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import x509

from mailflow.automatic import detect_automatic
from mailflow.catalogue import Catalogue, Tramite
from mailflow.classify import Classification, Classifier
from mailflow.decision import SIGNED_DOCUMENT, Decision, SignatureSummary
from mailflow.dias_habiles import Calendario
from mailflow.fields import (
    FieldValue,
    FieldVocabulary,
    detect_refugiado,
    extract_fields,
    extract_pdf_form_fields,
    strip_quoted,
)
from mailflow.message import Attachment, ParsedMessage
from mailflow.pdfactive import active_content
from mailflow.pdftext import PdfContent, read_pdf
from mailflow.signature import verify_attachments
from mailflow.values import normalise

ACTIVE_CONTENT = "contenido_activo"  # case flag: an attached PDF carries active content
SOFT_DEFECT_MARKERS = ("juego de caracteres", "charset", "codificación", "decodific")


@dataclass(frozen=True)
class Evidence:
    """What was read from the message: field values by id and where they came from."""

    values: dict[str, FieldValue]
    pdf_errors: tuple[str, ...]
    refugiado: bool


class Intake:
    """Decides one message at a time; pure apart from reading its own inputs."""

    def __init__(
        self,
        catalogue: Catalogue,
        vocabulary: FieldVocabulary,
        classifier: Classifier,
        calendario: Calendario,
        trust_roots: Sequence[x509.Certificate],
        *,
        own_addresses: Sequence[str] = (),
        own_domain: str | None = None,
        max_pdf_pages: int = 20,
        pdf_seconds: float = 5.0,
    ) -> None:
        self.catalogue = catalogue
        self.vocabulary = vocabulary
        self.classifier = classifier
        self.calendario = calendario
        self.trust_roots = list(trust_roots)
        self.own_addresses = tuple(a.lower() for a in own_addresses)
        self.own_domain = own_domain
        self.max_pdf_pages = max_pdf_pages
        self.pdf_seconds = pdf_seconds

    def decide(self, msg: ParsedMessage, *, received: dt.datetime) -> Decision:
        hits = detect_automatic(msg, own_addresses=self.own_addresses, own_domain=self.own_domain)
        if hits:
            return Decision(
                "ignore",
                None,
                tuple(h.reason for h in hits),
                rule_hits=tuple(h.rule for h in hits),
            )
        body = strip_quoted(msg.text)
        found = self.classifier.classify(msg.subject, body)
        hard_defects = tuple(d for d in msg.defects if not _soft(d))
        if found.tramite is None:
            return self._unclassified(found, msg, hard_defects)
        tramite = self.catalogue.get(found.tramite)
        if tramite.informative:
            reason = tramite.inform_reason or f"{tramite.name}: trámite atendido por otro canal"
            return Decision(
                "inform", tramite.id, (*found.reasons, reason), found.confidence, topic=found.topic
            )
        return self._assess(tramite, found, msg, body, hard_defects, received)

    def _unclassified(
        self, found: Classification, msg: ParsedMessage, defects: tuple[str, ...]
    ) -> Decision:
        reasons = found.reasons + tuple(f"Problema en el mensaje: {d}" for d in defects)
        topic = self.catalogue.topic(found.topic)
        if topic is not None and topic.channel and msg.sender:
            reasons += (f"{topic.label}: trámite atendido por otro canal (se informa el canal)",)
            return Decision("inform", None, reasons, found.confidence, topic=found.topic)
        return Decision("review", None, reasons, found.confidence, topic=found.topic)

    def _assess(
        self,
        tramite: Tramite,
        found: Classification,
        msg: ParsedMessage,
        body: str,
        defects: tuple[str, ...],
        received: dt.datetime,
    ) -> Decision:
        evidence = self._read(tramite, msg, body)
        values = evidence.values
        fields = {k: v.value for k, v in values.items() if v.value is not None and v.error is None}
        invalid = {k: v.error for k, v in values.items() if v.error is not None}
        sources = {k: v.source for k, v in values.items()}
        missing = list(self._missing(tramite, fields, evidence.refugiado))
        signature = self._signature(tramite, msg)
        reasons = list(found.reasons)
        flags: list[str] = ["refugiado"] if evidence.refugiado else []
        review: list[str] = [f"Problema en el mensaje: {d}" for d in defects]
        review += [f"Adjunto ilegible: {e}" for e in evidence.pdf_errors]
        for att in msg.pdfs:
            active = active_content(att.data)
            if active:
                flags.append(ACTIVE_CONTENT)
                review.append(
                    f"PDF con contenido activo ({', '.join(active)}): {att.filename or 'adjunto'}; "
                    "ábralo solo en un visor seguro"
                )
        if not msg.sender:
            review.append("El mensaje no tiene un remitente válido al que responder")
        if tramite.signature_required:
            if signature.status in ("absent", "unsigned"):
                missing.append(SIGNED_DOCUMENT)
                reasons.append(f"Firma: {signature.reason}")
            elif signature.status != "valid":
                review.append(f"Firma {signature.status}: {signature.reason}")
            else:
                reasons.append(f"Firma válida de {signature.signer or 'firmante sin nombre'}")
        for fid, why in invalid.items():
            reasons.append(f"{self.vocabulary.label(fid)}: {why}")
        if tramite.filing_limit_days and "fecha_notificacion" in fields:
            notified = dt.date.fromisoformat(fields["fecha_notificacion"])
            if self.calendario.is_extemporaneo(notified, received, tramite.filing_limit_days):
                flags.append("extemporaneo")
                review.append(
                    f"Recurso extemporáneo: presentado después de {tramite.filing_limit_days} "
                    f"días hábiles desde la notificación ({notified.isoformat()})"
                )
        if missing:
            labels = ", ".join(self._label(m) for m in missing)
            reasons.append(f"Faltan requisitos: {labels}")
        if review:
            disposition = "review"
            reasons.extend(review)
        elif missing:
            disposition = "observe"
        else:
            disposition = "accept"
            reasons.append("Requisitos completos")
        return Decision(
            disposition,  # type: ignore[arg-type]
            tramite.id,
            tuple(reasons),
            found.confidence,
            fields,
            invalid,
            tuple(dict.fromkeys(missing)),
            signature,
            tuple(flags),
            sources,
            found.topic,
        )

    def _read(self, tramite: Tramite, msg: ParsedMessage, body: str) -> Evidence:
        wanted = set(tramite.all_fields())
        merged: dict[str, FieldValue] = {}
        texts = [body]
        pdf_errors: list[str] = []
        _merge(merged, extract_fields(body, self.vocabulary, wanted, source="cuerpo"))
        for att in msg.pdfs:
            content = self._read_pdf(att)
            if content.error:
                pdf_errors.append(f"{att.filename or 'adjunto'}: {content.error}")
                continue
            texts.append(content.text)
            source = f"pdf:{att.filename}"
            _merge(merged, extract_fields(content.text, self.vocabulary, wanted, source=source))
            if content.form_fields:
                form = extract_pdf_form_fields(
                    content.form_fields, self.vocabulary, f"formulario:{att.filename}"
                )
                _merge(merged, {k: v for k, v in form.items() if k in wanted})
        if "correo" in wanted and "correo" not in merged and msg.sender:
            value, error = normalise("email", msg.sender)
            merged["correo"] = FieldValue(msg.sender, value, error, "remitente")
        for att_field in tramite.required_attachments:
            hit = self._attachment_for(att_field, msg.attachments)
            if hit is not None:
                merged[att_field] = FieldValue(hit.filename, hit.filename, None, "adjunto")
        refugiado = "carne_extranjeria" in merged or any(detect_refugiado(t) for t in texts)
        return Evidence(merged, tuple(pdf_errors), refugiado)

    def _read_pdf(self, att: Attachment) -> PdfContent:
        return read_pdf(att.data, max_pages=self.max_pdf_pages, seconds=self.pdf_seconds)

    def _attachment_for(
        self, field_id: str, attachments: Sequence[Attachment]
    ) -> Attachment | None:
        for att in attachments:
            if self.vocabulary.matches_attachment(field_id, att.filename):
                return att
        return None

    def _missing(self, tramite: Tramite, fields: dict[str, str], refugiado: bool) -> list[str]:
        required = list(tramite.required_fields)
        required += [c.field for c in tramite.conditional_fields if refugiado]
        required += list(tramite.required_attachments)
        return [f for f in dict.fromkeys(required) if f not in fields]

    def _signature(self, tramite: Tramite, msg: ParsedMessage) -> SignatureSummary:
        pdfs = [(a.filename, a.data) for a in msg.pdfs]
        if not pdfs:
            return SignatureSummary("absent", reason="No se adjuntó ningún documento PDF")
        report = verify_attachments(pdfs, self.trust_roots)
        return SignatureSummary(report.status, report.signer, report.reason, report.filename)

    def _label(self, item: str) -> str:
        if item == SIGNED_DOCUMENT:
            return "Documento firmado digitalmente (PDF)"
        return self.vocabulary.label(item)


def _soft(defect: str) -> bool:
    low = defect.lower()
    return any(m in low for m in SOFT_DEFECT_MARKERS)


def _merge(into: dict[str, FieldValue], new: dict[str, FieldValue]) -> None:
    """Keep the first valid value per field; a valid value replaces an invalid one."""
    for key, value in new.items():
        prior = into.get(key)
        if prior is None or (prior.error is not None and value.error is None):
            into[key] = value
