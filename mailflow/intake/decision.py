"""The intake decision for one message: disposition, tramite, fields, missing items, reasons."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mailflow.vocabulary import Disposition, SignatureStatus

# The same values as plain-string literals, so callers not yet passing `Disposition` members
# (reading.py) still type-check; `Decision` turns either into the `Disposition` member.
DispositionName = Literal["accept", "observe", "review", "ignore", "inform"]
DISPOSITIONS: tuple[Disposition, ...] = tuple(Disposition)

SIGNED_DOCUMENT = "documento_firmado"  # missing-item id for the signed document itself
SIGNED_DOCUMENT_LABEL = "Escrito de la solicitud en PDF, firmado (firma manuscrita o digital)"


@dataclass(frozen=True)
class SignatureSummary:
    """What the signature check found, in the shape of the public JSON contract."""

    status: str  # a SignatureStatus value; stored as the member (ValueError when unknown)
    signer: str | None = None
    reason: str = ""
    filename: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", SignatureStatus(self.status))

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape: {'status'} plus 'signer', 'file' and 'reason' when present."""
        out: dict[str, Any] = {"status": self.status}
        if self.signer:
            out["signer"] = self.signer
        if self.filename:
            out["file"] = self.filename
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Decision:
    """Everything intake decided about one message, and why."""

    disposition: Disposition | DispositionName  # stored as the Disposition member
    tramite: str | None
    reasons: tuple[str, ...]
    confidence: float = 0.0
    fields: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    signature: SignatureSummary = SignatureSummary(SignatureStatus.ABSENT)
    flags: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    topic: str | None = None
    rule_hits: tuple[str, ...] = ()  # names of the automatic-mail rules that matched
    checks: tuple[str, ...] = ()  # names of the intake checks that hit (checks.TABLE)
    escrito: bool = False  # an escrito (the request as a PDF) was presented
    signature_accepted: bool = False  # the escrito's signature lets the case proceed alone

    def __post_init__(self) -> None:
        object.__setattr__(self, "disposition", Disposition(self.disposition))

    def sent_to_review(self, reason: str, check: str) -> Decision:
        """This decision with one more check hit that needs staff (`check`, with the Spanish
        `reason`), e.g. `identidad`, applied after the sandboxed reading has decided."""
        return replace(
            self,
            disposition=Disposition.REVIEW,
            reasons=(*self.reasons, reason),
            checks=(*self.checks, check),
        )

    def as_json(self) -> dict[str, Any]:
        """The decision as the public JSON contract (DESIGN.md): tramite, disposition, confidence (3
        decimals), fields, missing, invalid, signature, flags, topic, rules, checks, reasons.
        """
        return {
            "tramite": self.tramite,
            "disposition": self.disposition,
            "confidence": round(self.confidence, 3),
            "fields": dict(self.fields),
            "missing": list(self.missing),
            "invalid": dict(self.invalid),
            "signature": self.signature.as_json(),
            "flags": list(self.flags),
            "topic": self.topic,
            "rules": list(self.rule_hits),
            "checks": list(self.checks),
            "reasons": list(self.reasons),
        }
