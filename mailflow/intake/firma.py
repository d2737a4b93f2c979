"""The escrito's signature checks: handwritten, altered or untrusted, someone else's, elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from mailflow.intake.catalogue import Tramite
from mailflow.intake.escrito import signer_is
from mailflow.intake.findings import HANDWRITTEN_FLAG, OTHER_SIGNER_FLAG, Facts, Finding
from mailflow.reasons import quote
from mailflow.vocabulary import SignatureStatus


class Handwritten:
    """Intake check `firma_manuscrita`: the PDF escrito has no digital signature; it is received and
    staff confirm the handwritten signature on the page (TUO Ley 27444, art. 136).
    """

    name = "firma_manuscrita"
    description = (
        "El escrito PDF no tiene firma digital: se recibe (firma manuscrita o digital) y el "
        "personal confirma la firma en la página (TUO Ley 27444, art. 136)."
    )
    on_review = False

    def check(self, facts: Facts) -> Finding | None:
        """A Finding with HANDWRITTEN_FLAG when a signature is required, an escrito was presented
        unsigned and the procedure's `unsigned_escrito` matches `on_review`; else None.
        """
        tramite = facts.tramite
        if not tramite.signature_required or not facts.escrito_presented:
            return None
        if facts.signature.status != SignatureStatus.UNSIGNED:
            return None
        if (tramite.unsigned_escrito == "review") != self.on_review:
            return None
        return Finding(
            f"El escrito {quote(_escrito_name(facts))} no tiene firma digital: el personal debe "
            "confirmar la firma manuscrita en el documento",
            flags=(HANDWRITTEN_FLAG,),
        )


class HandwrittenForReview(Handwritten):
    """As Handwritten, for procedures whose YAML sends unsigned escritos to staff review first
    (`unsigned_escrito: review`).
    """

    name = "firma_manuscrita_revision"
    description = "Como firma_manuscrita, para trámites cuyo YAML pide revisión previa."
    on_review = True


class BadSignature:
    """Intake check `firma_no_valida`: the escrito's digital signature is altered, damaged or not
    from a trusted root.
    """

    name = "firma_no_valida"
    description = "La firma digital del escrito está alterada, dañada o no es de confianza."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding with the `firma_no_valida` flag when a signature is required and its status is
        invalid or untrusted, else None.
        """
        sig = facts.signature
        if not facts.tramite.signature_required or sig.status not in (
            SignatureStatus.INVALID,
            SignatureStatus.UNTRUSTED,
        ):
            return None
        what = "no es de confianza" if sig.status == SignatureStatus.UNTRUSTED else "no es válida"
        return Finding(
            f"La firma digital del escrito {quote(sig.filename or 'adjunto')} {what}: {sig.reason}",
            flags=("firma_no_valida",),
        )


class OtherSigner:
    """Intake check `firmante_distinto`: a valid signature by someone other than the applicant
    (certificate name or document number).
    """

    name = "firmante_distinto"
    description = (
        "El escrito está firmado con un certificado válido, pero de otra persona que el "
        "solicitante (nombre o número de documento del certificado)."
    )

    def check(self, facts: Facts) -> Finding | None:
        """A Finding with OTHER_SIGNER_FLAG when no signer of a valid escrito matches the
        applicant's name or document numbers; None when unsigned, nothing to compare with, or a
        signer matches.
        """
        escrito = facts.escrito
        if not facts.tramite.signature_required or escrito is None or escrito.report is None:
            return None
        if facts.signature.status != SignatureStatus.VALID:
            return None
        name = facts.fields.get("nombres_apellidos") or facts.sender_name or None
        numbers = [facts.fields.get(k, "") for k in ("documento_identidad", "carne_extranjeria")]
        signers = escrito.report.signers
        if not name and not any(numbers):
            return None  # nobody to compare with: the observation asks for the name first
        if not signers or any(signer_is(s, name, numbers) for s in signers):
            return None
        names = ", ".join(quote(s.common_name or "sin nombre") for s in signers)
        who = quote(name) if name else "los números de documento de la solicitud"
        return Finding(
            f"El escrito está firmado por {names}, que no coincide con {who}",
            flags=(OTHER_SIGNER_FLAG,),
        )


class SignedNotEscrito:
    """Intake check `firmado_no_es_escrito`: a PDF is digitally signed but none is the request
    itself; a signature on another document does not sign the escrito.
    """

    name = "firmado_no_es_escrito"
    description = (
        "Hay un PDF con firma digital, pero ningún PDF lleva la solicitud (el escrito): una "
        "firma en otro documento no firma el escrito."
    )

    def check(self, facts: Facts) -> Finding | None:
        """A Finding naming the signed PDFs when a signature is required and no escrito was
        presented, else None.
        """
        if not facts.tramite.signature_required or facts.escrito_presented:
            return None
        signed = [
            quote(d.name)
            for d in facts.documents
            if d.report is not None
            and d.report.status not in (SignatureStatus.UNSIGNED, SignatureStatus.ABSENT)
        ]
        if not signed:
            return None
        return Finding(
            f"El PDF firmado {', '.join(signed)} no parece ser el escrito de la solicitud; el "
            "personal debe revisar si lo es"
        )


class GoodSignature:
    """Intake check `firma_valida`: records who validly signed the escrito (a note, not a problem)."""

    name = "firma_valida"
    description = "Firma digital válida del escrito (se registra quién firmó)."

    def check(self, facts: Facts) -> Finding | None:
        """A Finding naming the signer when a required signature is valid on a presented escrito,
        else None.
        """
        if not facts.tramite.signature_required or facts.signature.status != SignatureStatus.VALID:
            return None
        if not facts.escrito_presented:
            return None
        return Finding(f"Firma digital válida de {quote(facts.signature.signer or 'sin nombre')}")


def _escrito_name(facts: Facts) -> str:
    if facts.escrito is not None:
        return facts.escrito.name
    return facts.signature.filename or "adjunto"


def signature_accepted(tramite: Tramite, status: str, escrito: bool, flags: Sequence[str]) -> bool:
    """Whether the escrito's signature lets the case proceed without staff: not required, a
    valid signature of the applicant, or an escrito without digital signature (handwritten)
    where the procedure accepts it."""
    if not tramite.signature_required:
        return True
    if OTHER_SIGNER_FLAG in flags:
        return False
    if status == SignatureStatus.VALID:
        return True
    return status == SignatureStatus.UNSIGNED and escrito and tramite.unsigned_escrito == "accept"
