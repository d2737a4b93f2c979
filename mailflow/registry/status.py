"""The registry's status vocabulary: the spreadsheets' words mapped to a closed set of codes."""

from __future__ import annotations

import re
from enum import StrEnum

from mailflow.textnorm import fold


class RegistryStatus(StrEnum):
    """Where a person stands before the commission (Ley 27891 and its reglamento)."""

    REFUGIADO_RECONOCIDO = "refugiado_reconocido"
    SOLICITANTE = "solicitante"
    DENEGADO = "denegado"
    CESADO = "cesado"
    REVOCADO = "revocado"
    RENUNCIA = "renuncia"


STATUS_LABELS: dict[RegistryStatus, str] = {
    RegistryStatus.REFUGIADO_RECONOCIDO: "Refugiado(a) reconocido(a)",
    RegistryStatus.SOLICITANTE: "Solicitante de refugio",
    RegistryStatus.DENEGADO: "Solicitud denegada",
    RegistryStatus.CESADO: "Condición cesada",
    RegistryStatus.REVOCADO: "Condición revocada",
    RegistryStatus.RENUNCIA: "Renunció a la condición",
}

# Folded phrases seen in the commission's spreadsheets → code; the first phrase that appears as
# whole words in the cell wins, so the negative and more specific phrases come first.
STATUS_WORDS: tuple[tuple[str, RegistryStatus], ...] = (
    ("no reconocido", RegistryStatus.DENEGADO),
    ("denegado", RegistryStatus.DENEGADO),
    ("denegada", RegistryStatus.DENEGADO),
    ("improcedente", RegistryStatus.DENEGADO),
    ("cesado", RegistryStatus.CESADO),
    ("cesada", RegistryStatus.CESADO),
    ("cesacion", RegistryStatus.CESADO),
    ("revocado", RegistryStatus.REVOCADO),
    ("revocada", RegistryStatus.REVOCADO),
    ("cancelado", RegistryStatus.REVOCADO),
    ("renuncia", RegistryStatus.RENUNCIA),
    ("renuncio", RegistryStatus.RENUNCIA),
    ("solicitante", RegistryStatus.SOLICITANTE),
    ("en tramite", RegistryStatus.SOLICITANTE),
    ("en evaluacion", RegistryStatus.SOLICITANTE),
    ("refugiado reconocido", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("refugiada reconocida", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("reconocido", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("reconocida", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("refugiado", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("refugiada", RegistryStatus.REFUGIADO_RECONOCIDO),
    ("rr", RegistryStatus.REFUGIADO_RECONOCIDO),
)


def status_code(text: str | None) -> RegistryStatus | None:
    """The code for a registry cell ("Refugiado Reconocido", "REFUGIADA", "cesado"); None when
    the cell is empty or says nothing this vocabulary knows (then nothing is automatic)."""
    if not text:
        return None
    folded = " " + re.sub(r"[^a-z0-9]+", " ", fold(text)).strip() + " "
    if folded.strip() in {s.value.replace("_", " ") for s in RegistryStatus}:
        return RegistryStatus(folded.strip().replace(" ", "_"))
    for phrase, code in STATUS_WORDS:
        if f" {phrase} " in folded:
            return code
    return None
