"""Intake: from a parsed message to a Decision, the way an experienced clerk would decide.

The Intake class classifies and decides; reading the message's evidence (fields, documents,
signatures) is in `mailflow.intake.evidence`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence

from asn1crypto import x509

from mailflow.clock.dias_habiles import Calendario
from mailflow.intake.catalogue import Catalogue, Tramite
from mailflow.intake.checks import Verdict, run_table
from mailflow.intake.classify import Classification, Classifier
from mailflow.intake.decision import (
    SIGNED_DOCUMENT,
    SIGNED_DOCUMENT_LABEL,
    Decision,
    SignatureSummary,
)
from mailflow.intake.escrito import pick_escrito
from mailflow.intake.evidence import (
    Evidence,
    escrito_signature,
    missing_items,
    rank_escritos,
    read_evidence,
)
from mailflow.intake.fields import FieldVocabulary
from mailflow.intake.findings import Facts, IdentityLookup
from mailflow.intake.firma import signature_accepted
from mailflow.intake.forwards import request_body
from mailflow.intake.pdfactive import active_content
from mailflow.mail.defects import Defect
from mailflow.mail.message import ParsedMessage
from mailflow.triage.automatic import RuleHit, detect_automatic
from mailflow.vocabulary import Disposition, SignatureStatus

_FORWARDED_SUBJECT = re.compile(r"^Asunto: (.{1,300})$", re.MULTILINE)  # forwards.request_body


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
        automatic: Sequence[RuleHit] | None = None,
    ) -> Decision:
        """Decide a new message: what to do with it, for which procedure, and why.

        Takes the parsed message, `received` (aware datetime: when it reached us, the start of
        the legal terms and of an extemporaneous appeal's count) and `identity`, the applicant
        registry lookup for identity-sensitive procedures (None: not checked, e.g. without a
        database). `automatic`: what `detect_automatic` found on this very `msg` with this
        Intake's own addresses and domain, when the caller has it already (None: detected here).
        Returns a Decision whose disposition is
        - "ignore": automatic mail (auto-replies, bounces, our own addresses: `automatic`),
        - "inform": an informative procedure or an off-catalogue topic with its own channel,
        - "review": unclassified or ambiguous (hard parsing defects listed as reasons),
        - else what `checks.run_table` over the facts says ("accept", "observe" or "review"),
          with the fields read, missing/invalid items, the signature summary and the checks hit.
        Soft defects (`defects.SOFT`) do not send a message to staff. Reads the attached PDFs
        (at most MAX_PDFS_READ, each bounded by `max_pdf_pages` and `pdf_seconds`); pure
        otherwise. Does not raise for hostile input: problems become reasons.
        """
        hits = automatic
        if hits is None:
            hits = detect_automatic(
                msg, own_addresses=self.own_addresses, own_domain=self.own_domain
            )
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
        missing = missing_items(tramite, fields, evidence.refugiado)
        escrito = pick_escrito(rank_escritos(evidence.documents, fields, msg.sender_name))
        signature = escrito_signature(tramite, evidence.documents, escrito, self.trust_roots)
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
        return read_evidence(
            tramite,
            msg,
            body,
            vocabulary=self.vocabulary,
            trust_roots=self.trust_roots,
            max_pdf_pages=self.max_pdf_pages,
            pdf_seconds=self.pdf_seconds,
        )

    def _label(self, item: str) -> str:
        if item == SIGNED_DOCUMENT:
            return SIGNED_DOCUMENT_LABEL
        return self.vocabulary.label(item)
