"""What a follow-up may change in a case: add missing values, change values only when trusted.

The policy (issue 14, "From: is the only identity"):

- A value the case does not have yet may be added by a reply from the case's address, so the
  subsanación flow keeps working where no trusted receiving server is configured.
- An existing value is changed only when the sender is authenticated and aligned (DMARC or an
  aligned DKIM/SPF pass from a trusted server); otherwise the proposed change is held for staff.
- An identity field (name, document, carné, email, nationality, birth date) is never changed
  without staff confirmation, authenticated or not.
- Where a trusted server is configured and the sender is not authenticated, nothing is applied:
  every value is held for staff.

Held and changed values keep the previous value, for the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mailflow.mail.authentication import SenderAuthentication

IDENTITY_FIELDS = frozenset(
    {
        "nombres_apellidos",
        "documento_identidad",
        "carne_extranjeria",
        "correo",
        "nacionalidad",
        "fecha_nacimiento",
    }
)


@dataclass(frozen=True)
class Merge:
    """The outcome of merging a follow-up's values into a case's.

    `fields`: the case's values after the merge (what may be written now). `added`: values
    the case did not have. `changed` and `held`: field → (previous, proposed), applied or
    awaiting staff confirmation. `blocked`: nothing may be applied (unauthenticated sender
    where authentication is configured).
    """

    fields: dict[str, str]
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    held: dict[str, tuple[str, str]] = field(default_factory=dict)
    blocked: bool = False

    def audit(self) -> dict[str, object]:
        """JSON-ready summary for the case event: previous and proposed values."""
        pairs = {"changed": self.changed, "held": self.held}
        out: dict[str, object] = {"added": dict(self.added)}
        for key, values in pairs.items():
            out[key] = {f: {"anterior": old, "propuesto": new} for f, (old, new) in values.items()}
        return out


def merge_follow_up(
    existing: dict[str, str],
    incoming: dict[str, str],
    sender: SenderAuthentication,
    identity_fields: frozenset[str] = IDENTITY_FIELDS,
) -> Merge:
    """Merge `incoming` values (from a follow-up) into `existing` (the case's) under the policy
    in this module's docstring. Pure: takes and returns plain dicts of field id → value."""
    fields = dict(existing)
    added: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    held: dict[str, tuple[str, str]] = {}
    blocked = sender.configured and not sender.authenticated
    for name, value in incoming.items():
        old = existing.get(name)
        if old is None:
            if blocked:
                held[name] = ("", value)
            else:
                added[name] = value
                fields[name] = value
        elif _same(old, value):
            continue
        elif blocked or name in identity_fields or not sender.authenticated:
            held[name] = (old, value)
        else:
            changed[name] = (old, value)
            fields[name] = value
    return Merge(fields, added, changed, held, blocked)


def held_reason(
    case_number: str, merge: Merge, sender: SenderAuthentication, label: Callable[[str], str]
) -> str:
    """Spanish reason for staff listing the held changes; `label` names a field for people."""
    what = ", ".join(
        f"{label(f)}: «{old or '(vacío)'}» → «{new}»" for f, (old, new) in merge.held.items()
    )
    why = "no se aplicó nada" if merge.blocked else "los cambios requieren confirmación"
    return (
        f"Respuesta en el expediente {case_number} con datos por confirmar ({sender.reason}; "
        f"{why}): {what}. Confirme con el solicitante antes de modificar el expediente."
    )


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
