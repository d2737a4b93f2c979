"""What a staff action will do, in words, for the confirmation the desk asks before doing it."""

from __future__ import annotations

from mailflow.cases.machines import TransitionDef
from mailflow.mail.outgoing import SUBJECT_WHAT
from mailflow.web.labels import Labels

SERIOUS_EFFECTS = frozenset({"issue_document", "send_reply"})
SERIOUS_EVENTS = frozenset({"rechazar", "declarar_improcedente", "observar"})


def transition_summary(transition: TransitionDef, to_addr: str | None, labels: Labels) -> str:
    """One Spanish sentence: new state, documents issued, replies sent and to whom.

    Takes the machine's transition (effects from state_machines/*.yaml), the applicant's
    address (None when unknown) and the vocabulary; returns e.g. "Pasará a «Admitido».
    Se emitirá: Cargo de recepción. Se enviará «Cargo de recepción» a ana@example.org."
    """
    parts = [f"El expediente pasará a «{labels.state(transition.dest)}»."]
    for effect in transition.effects:
        if effect.kind == "issue_document" and effect.arg:
            parts.append(f"Se emitirá y firmará: {labels.document(effect.arg)}.")
        elif effect.kind == "send_reply" and effect.arg:
            what = SUBJECT_WHAT.get(effect.arg, effect.arg.replace("_", " "))
            who = to_addr or "nadie (el expediente no tiene correo del solicitante)"
            parts.append(f"Se enviará el correo «{what}» a {who}.")
    if len(parts) == 1:
        parts.append("No se enviará ningún correo.")
    return " ".join(parts)


def is_serious(transition: TransitionDef) -> bool:
    """Whether the action issues, sends or rejects (asks for confirmation in every case)."""
    return transition.event in SERIOUS_EVENTS or any(
        e.kind in SERIOUS_EFFECTS for e in transition.effects
    )
