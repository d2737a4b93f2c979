"""Identity check for requests that change who a person is in the registry."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from mailflow.intake.catalogue import Tramite
from mailflow.intake.findings import IdentityLookup
from mailflow.registry.applicants import (
    cross_check,
    find_applicant,
    is_registered_sender,
    registry_has_people,
)


def registry_lookup(session: Session) -> IdentityLookup:
    """The `identidad` check's view of the applicant registry, read in `session`."""

    def lookup(tramite: Tramite, fields: Mapping[str, str], sender: str) -> list[str]:
        return identity_concerns(session, tramite, fields, sender)

    return lookup


def identity_concerns(
    session: Session, tramite: Tramite, fields: Mapping[str, str], sender: str
) -> list[str]:
    """Spanish reasons why an identity-changing request must go to staff; [] when it may proceed.

    Only procedures marked `identity_sensitive` are checked, and only once the registry holds
    people (an installation that has not imported its spreadsheets cannot check anyone).
    """
    if not tramite.identity_sensitive:
        return []
    if not registry_has_people(session):
        return []
    person = find_applicant(
        session,
        email=sender or None,
        document=fields.get("documento_identidad"),
        carne=fields.get("carne_extranjeria"),
    )
    if person is None:
        return [
            f"{tramite.name}: el solicitante no figura en el registro; "
            "verifique su identidad antes de aplicar cambios"
        ]
    reasons: list[str] = []
    if not is_registered_sender(person, sender):
        registered = person.email or "ninguno"
        reasons.append(
            f"{tramite.name}: el correo remitente {sender or '(vacío)'} no es el registrado "
            f"del solicitante ({registered}); un cambio de identidad no se aplica automáticamente"
        )
    compared = {k: v for k, v in fields.items() if k not in tramite.updates_registry}
    reasons.extend(f"Discrepancia con el registro: {d}" for d in cross_check(person, compared))
    return reasons
