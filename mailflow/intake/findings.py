"""What intake checks see and say: the facts of one message, a finding, the check protocol."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from mailflow.intake.catalogue import Tramite
from mailflow.intake.decision import SignatureSummary
from mailflow.intake.escrito import Document
from mailflow.mail.defects import Defect

Action = Literal["review", "observe", "flag", "note"]
IdentityLookup = Callable[[Tramite, Mapping[str, str], str], list[str]]
HANDWRITTEN_FLAG = "firma_manuscrita_por_confirmar"
OTHER_SIGNER_FLAG = "firmante_distinto"


@dataclass(frozen=True)
class Facts:
    """Everything read from one message (or a reply merged with its case) that checks judge."""

    tramite: Tramite
    fields: Mapping[str, str]
    invalid: Mapping[str, str]
    missing: tuple[str, ...]  # required items not found (field ids, SIGNED_DOCUMENT)
    refugiado: bool
    defects: tuple[Defect, ...]  # problems that make the message itself doubtful
    sender: str
    sender_name: str
    documents: tuple[Document, ...]
    escrito: Document | None  # the escrito attached to this message
    escrito_presented: bool  # an escrito is on file (this message or the request it completes)
    signature: SignatureSummary
    received: dt.datetime
    extemporaneo_since: dt.date | None = None  # notification date when filed out of time
    label: Callable[[str], str] = str
    identity: IdentityLookup | None = None
    active_content: tuple[str, ...] = ()  # reasons: attached PDFs with JavaScript, files …


@dataclass(frozen=True)
class Finding:
    """What one check found: the reason people read, and missing items or flags it adds."""

    reason: str
    missing: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


class Check(Protocol):
    """A named check: `check` returns a Finding when it hits, else None."""

    name: str
    description: str

    def check(self, facts: Facts) -> Finding | None:
        """A Finding when the check hits `facts`, else None. Must not raise: checks are pure
        functions of the facts.
        """
