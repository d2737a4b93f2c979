"""Intake: from a parsed message to a Decision, the way an experienced clerk would decide."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import x509

from mailflow.automatic import detect_automatic
from mailflow.catalogue import Catalogue, Tramite
from mailflow.checks import Verdict, run_table
from mailflow.classify import Classification, Classifier
from mailflow.decision import SIGNED_DOCUMENT, SIGNED_DOCUMENT_LABEL, Decision, SignatureSummary
from mailflow.defects import Defect
from mailflow.dias_habiles import Calendario
from mailflow.escrito import Document, looks_like_escrito, pick_escrito, signer_is
from mailflow.fields import (
    FieldValue,
    FieldVocabulary,
    detect_refugiado,
    extract_fields,
    extract_pdf_form_fields,
)
from mailflow.findings import Facts, IdentityLookup
from mailflow.firma import signature_accepted
from mailflow.forwards import request_body
from mailflow.message import Attachment, ParsedMessage
from mailflow.pdfactive import active_content
from mailflow.pdftext import PdfContent, read_pdf
from mailflow.signature import verify_attachments, verify_each
from mailflow.values import normalise
from mailflow.vocabulary import Disposition, SignatureStatus

MAX_PDFS_READ = 10  # PDFs read (text, form fields, signatures) per message; the rest go to staff
_TOO_MANY_PDFS = f"no se leyó: el mensaje trae más de {MAX_PDFS_READ} PDF"
_FORWARDED_SUBJECT = re.compile(r"^Asunto: (.{1,300})$", re.MULTILINE)  # forwards.request_body


@dataclass(frozen=True)
class Evidence:
    """What was read from the message: field values by id and where they came from."""

    values: dict[str, FieldValue]
    documents: tuple[Document, ...]
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

    def decide(
        self,
        msg: ParsedMessage,
        *,
        received: dt.datetime,
        identity: IdentityLookup | None = None,
    ) -> Decision:
        """Decide a new message: what to do with it, for which procedure, and why.

        Takes the parsed message, `received` (aware datetime: when it reached us, the start of
        the legal terms and of an extemporaneous appeal's count) and `identity`, the applicant
        registry lookup for identity-sensitive procedures (None: not checked, e.g. without a
        database). Returns a Decision whose disposition is
        - "ignore": automatic mail (auto-replies, bounces, our own addresses: `automatic`),
        - "inform": an informative procedure or an off-catalogue topic with its own channel,
        - "review": unclassified or ambiguous (hard parsing defects listed as reasons),
        - else what `checks.run_table` over the facts says ("accept", "observe" or "review"),
          with the fields read, missing/invalid items, the signature summary and the checks hit.
        Soft defects (`defects.SOFT`) do not send a message to staff. Reads the attached PDFs
        (at most MAX_PDFS_READ, each bounded by `max_pdf_pages` and `pdf_seconds`); pure
        otherwise. Does not raise for hostile input: problems become reasons.
        """
        hits = detect_automatic(msg, own_addresses=self.own_addresses, own_domain=self.own_domain)
        if hits:
            return Decision(
                Disposition.IGNORE,
                None,
                tuple(h.reason for h in hits),
                rule_hits=tuple(h.rule for h in hits),
            )
        body = request_body(msg.text, msg.sender, msg.sender_name)
        found = self._classify(msg, body)
        hard_defects = tuple(d for d in msg.defects if not d.soft)
        if found.tramite is None:
            return self._unclassified(found, msg, hard_defects)
        tramite = self.catalogue.get(found.tramite)
        if tramite.informative:
            reason = tramite.inform_reason or f"{tramite.name}: trámite atendido por otro canal"
            return Decision(
                Disposition.INFORM,
                tramite.id,
                (*found.reasons, reason),
                found.confidence,
                topic=found.topic,
            )
        return self._assess(tramite, found, msg, body, hard_defects, received, identity=identity)

    def _classify(self, msg: ParsedMessage, body: str) -> Classification:
        """By subject, then body; failing both, by a forwarded message's own subject and text
        (Outlook "forward as attachment" with a bare "RV:" subject)."""
        found = self.classifier.classify(msg.subject, body)
        if found.tramite is not None or found.topic is not None:
            return found
        for subject in _FORWARDED_SUBJECT.findall(body[:20_000])[:3]:
            inner = self.classifier.classify(subject, "")
            if inner.tramite is not None:
                why = f"Trámite identificado en el mensaje reenviado: {inner.reasons[0]}"
                return dataclasses.replace(inner, reasons=(why, *inner.reasons[1:]))
        for enclosed in msg.enclosed:
            first, _, rest = enclosed.partition("\n")
            subject = first[len("Asunto: ") :] if first.startswith("Asunto: ") else ""
            inner = self.classifier.classify(subject, rest if subject else enclosed)
            if inner.tramite is not None:
                why = f"Trámite identificado en el mensaje reenviado: {inner.reasons[0]}"
                return dataclasses.replace(inner, reasons=(why, *inner.reasons[1:]))
        return found

    def _unclassified(
        self, found: Classification, msg: ParsedMessage, defects: tuple[Defect, ...]
    ) -> Decision:
        reasons = found.reasons + tuple(f"Problema en el mensaje: {d}" for d in defects)
        topic = self.catalogue.topic(found.topic)
        if topic is not None and topic.channel and msg.sender:
            reasons += (f"{topic.label}: trámite atendido por otro canal (se informa el canal)",)
            return Decision(Disposition.INFORM, None, reasons, found.confidence, topic=found.topic)
        return Decision(Disposition.REVIEW, None, reasons, found.confidence, topic=found.topic)

    def _assess(
        self,
        tramite: Tramite,
        found: Classification,
        msg: ParsedMessage,
        body: str,
        defects: tuple[Defect, ...],
        received: dt.datetime,
        *,
        identity: IdentityLookup | None = None,
    ) -> Decision:
        evidence = self._read(tramite, msg, body)
        facts = self._facts(tramite, msg, evidence, defects, received, identity)
        verdict = run_table(facts)
        return self._decision(tramite, found, facts, verdict, evidence)

    def _facts(
        self,
        tramite: Tramite,
        msg: ParsedMessage,
        evidence: Evidence,
        defects: tuple[Defect, ...],
        received: dt.datetime,
        identity: IdentityLookup | None,
        *,
        prior_fields: Mapping[str, str] | None = None,
        prior_signature: SignatureSummary | None = None,
        filed: dt.datetime | None = None,
    ) -> Facts:
        values = evidence.values
        fields = dict(prior_fields or {})
        fields.update(
            {k: v.value for k, v in values.items() if v.value is not None and v.error is None}
        )
        invalid = {k: v.error for k, v in values.items() if v.error is not None and k not in fields}
        missing = self._missing(tramite, fields, evidence.refugiado)
        escrito = pick_escrito(_rank_escritos(evidence.documents, fields, msg.sender_name))
        signature = self._signature(tramite, evidence.documents, escrito)
        presented = escrito is not None
        if (
            not presented
            and prior_signature is not None
            and prior_signature.status != SignatureStatus.ABSENT
        ):
            signature, presented = prior_signature, True  # the escrito came with the request
        if tramite.signature_required and not presented:
            missing.append(SIGNED_DOCUMENT)
        late = None
        if tramite.filing_limit_days and "fecha_notificacion" in fields:
            notified = dt.date.fromisoformat(fields["fecha_notificacion"])
            when = filed or received
            if self.calendario.is_extemporaneo(notified, when, tramite.filing_limit_days):
                late = notified
        return Facts(
            tramite=tramite,
            fields=fields,
            invalid=invalid,
            missing=tuple(dict.fromkeys(missing)),
            refugiado=evidence.refugiado,
            defects=defects,
            sender=msg.sender,
            sender_name=msg.sender_name,
            documents=evidence.documents,
            escrito=escrito,
            escrito_presented=presented,
            signature=signature,
            received=received,
            extemporaneo_since=late,
            label=self._label,
            identity=identity,
            active_content=tuple(
                f"PDF con contenido activo ({', '.join(found)}): {att.filename or 'adjunto'}; "
                "ábralo solo en un visor seguro"
                for att in msg.pdfs
                if (found := active_content(att.data))
            ),
        )

    def _decision(
        self,
        tramite: Tramite,
        found: Classification,
        facts: Facts,
        verdict: Verdict,
        evidence: Evidence,
    ) -> Decision:
        escrito = facts.escrito_presented
        return Decision(
            verdict.disposition,
            tramite.id,
            (*found.reasons, *verdict.reasons),
            found.confidence,
            dict(facts.fields),
            dict(facts.invalid),
            verdict.missing,
            facts.signature,
            verdict.flags,
            {k: v.source for k, v in evidence.values.items()},
            found.topic,
            checks=verdict.hits,
            escrito=escrito,
            signature_accepted=signature_accepted(
                tramite, facts.signature.status, escrito, verdict.flags
            ),
        )

    def recheck(
        self,
        msg: ParsedMessage,
        tramite_id: str,
        *,
        received: dt.datetime,
        filed: dt.datetime,
        prior_fields: Mapping[str, str],
        prior_signature: SignatureSummary | None,
        prior_flags: Sequence[str] = (),
        identity: IdentityLookup | None = None,
    ) -> Decision:
        """Decide a reply to an observation: the reply read as the case's procedure, merged with
        what the case already holds (`prior_fields`, the escrito's `prior_signature`), through
        the same decision table as a new request. `filed` is when the case was received (the
        filing date for extemporaneidad); `received` when this reply arrived."""
        tramite = self.catalogue.get(tramite_id)
        body = request_body(msg.text, msg.sender, msg.sender_name)
        found = Classification(tramite.id, 1.0, (f"Subsanación de {tramite.name}",))
        evidence = self._read(tramite, msg, body)
        if "refugiado" in prior_flags and not evidence.refugiado:
            evidence = dataclasses.replace(evidence, refugiado=True)
        hard = tuple(d for d in msg.defects if not d.soft)
        facts = self._facts(
            tramite,
            msg,
            evidence,
            hard,
            received,
            identity,
            prior_fields=prior_fields,
            prior_signature=prior_signature,
            filed=filed,
        )
        return self._decision(tramite, found, facts, run_table(facts), evidence)

    def _read(self, tramite: Tramite, msg: ParsedMessage, body: str) -> Evidence:
        wanted = set(tramite.all_fields())
        merged: dict[str, FieldValue] = {}
        texts = [body]
        _merge(merged, extract_fields(body, self.vocabulary, wanted, source="cuerpo"))
        for index, enclosed in enumerate(msg.enclosed, 1):
            inner = request_body(enclosed, msg.sender, msg.sender_name)
            texts.append(inner)
            source = f"mensaje-adjunto-{index}"
            _merge(merged, extract_fields(inner, self.vocabulary, wanted, source=source))
        documents: list[Document] = []
        pdfs_read = 0
        for att in msg.attachments:
            if att.is_pdf and pdfs_read >= MAX_PDFS_READ:
                content: PdfContent | None = PdfContent(error=_TOO_MANY_PDFS)
            elif att.is_pdf:
                pdfs_read += 1
                content = self._read_pdf(att)
            else:
                content = None
            if content is not None and not content.error:
                texts.append(content.text)
                source = f"pdf:{att.filename}"
                found = extract_fields(content.text, self.vocabulary, wanted, source=source)
                _merge(merged, found)
                if content.form_fields:
                    form = extract_pdf_form_fields(
                        content.form_fields, self.vocabulary, f"formulario:{att.filename}"
                    )
                    _merge(merged, {k: v for k, v in form.items() if k in wanted})
            documents.append(Document(att, content, None, self._kind(tramite, att, content)))
        pdfs = [d for d in documents if d.content is not None and d.content.error != _TOO_MANY_PDFS]
        if tramite.signature_required and pdfs:
            reports = verify_each(
                [(d.attachment.filename, d.attachment.data) for d in pdfs], self.trust_roots
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

    def _read_pdf(self, att: Attachment) -> PdfContent:
        return read_pdf(att.data, max_pages=self.max_pdf_pages, seconds=self.pdf_seconds)

    def _kind(self, tramite: Tramite, att: Attachment, content: PdfContent | None) -> str:
        """What an attachment is: a required attachment (by name, then by its text), the
        escrito, or "otro"."""
        text = content.text if content is not None and not content.error else ""
        for field_id in tramite.required_attachments:
            if self.vocabulary.matches_attachment(field_id, att.filename, text):
                return field_id
        readable = content is not None and (content.error is None or content.encrypted)
        if readable and looks_like_escrito(tramite, content, att.filename, att.data):
            return "escrito"
        return "otro"

    def _missing(self, tramite: Tramite, fields: dict[str, str], refugiado: bool) -> list[str]:
        required = list(tramite.required_fields)
        required += [c.field for c in tramite.conditional_fields if refugiado]
        required += list(tramite.required_attachments)
        return [f for f in dict.fromkeys(required) if f not in fields]

    def _signature(
        self, tramite: Tramite, documents: tuple[Document, ...], escrito: Document | None
    ) -> SignatureSummary:
        """The escrito's signature when the procedure requires one (every PDF is verified, the
        escrito's counts); otherwise the worst signature among the PDFs, as before."""
        pdfs = [d for d in documents if d.attachment.is_pdf]
        if not pdfs:
            return SignatureSummary(
                SignatureStatus.ABSENT, reason="No se adjuntó ningún documento PDF"
            )
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
            report = verify_attachments(
                [(d.attachment.filename, d.attachment.data) for d in pdfs], self.trust_roots
            )
        assert report is not None
        return SignatureSummary(report.status, report.signer, report.reason, report.filename)

    def _label(self, item: str) -> str:
        if item == SIGNED_DOCUMENT:
            return SIGNED_DOCUMENT_LABEL
        return self.vocabulary.label(item)


def _rank_escritos(
    documents: tuple[Document, ...], fields: Mapping[str, str], sender_name: str
) -> tuple[Document, ...]:
    """Escritos signed by the applicant first (co-signed ones included), then the rest."""
    name = fields.get("nombres_apellidos") or sender_name or None
    numbers = [fields.get(k, "") for k in ("documento_identidad", "carne_extranjeria")]

    def own(doc: Document) -> int:
        signers = doc.report.signers if doc.report else ()
        return 0 if any(signer_is(s, name, numbers) for s in signers) else 1

    return tuple(sorted(documents, key=own))


def _merge(into: dict[str, FieldValue], new: dict[str, FieldValue]) -> None:
    """Keep the first valid value per field; a valid value replaces an invalid one."""
    for key, value in new.items():
        prior = into.get(key)
        if prior is None or (prior.error is not None and value.error is None):
            into[key] = value
