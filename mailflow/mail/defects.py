"""Parsing defects as a closed vocabulary: a code that code tests, a Spanish text staff read.

The parser (`parse`, `headerguard`, `containers`) records each problem it meets as a `Defect`:
its `DefectCode` and the Spanish sentence rendered from `DESCRIPTIONS` with the values found.
Intake decides on codes (`SOFT`), never by searching the Spanish text; people see `str(defect)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DefectCode(StrEnum):
    """What went wrong while reading a message; each value is a stable identifier."""

    HEADERS_TOO_BIG = "encabezados_demasiado_grandes"
    HEADER_LINES_TOO_MANY = "demasiadas_lineas_de_encabezado"
    HEADER_TOO_LONG = "encabezado_demasiado_largo"
    MIME_DELIMITERS_TOO_MANY = "demasiados_delimitadores_mime"
    UNREADABLE = "mensaje_ilegible"
    HEADER_LINES_DAMAGED = "lineas_de_encabezado_danadas"
    MIME_MALFORMED = "mime_mal_formado"
    MIME_UNREADABLE = "mime_ilegible"
    MIME_TOO_DEEP = "mime_demasiado_profundo"
    MIME_TRUNCATED = "mime_truncado"
    PARTS_TOO_MANY = "demasiadas_partes"
    ATTACHMENT_TOO_BIG = "adjunto_demasiado_grande"
    NOT_UTF8 = "utf8_invalido"
    CHARSET_UNKNOWN = "juego_de_caracteres_desconocido"
    CHARSET_INVALID_TEXT = "texto_invalido_para_el_juego_de_caracteres"
    ENCODED_WORD_INVALID = "palabra_codificada_invalida"
    BASE64_INVALID = "base64_invalido"
    DATE_UNREADABLE = "fecha_ilegible"
    TEXT_TRUNCATED = "texto_recortado"
    CONTAINER_DAMAGED = "contenedor_danado"
    TNEF_TOO_MANY_FILES = "winmail_demasiados_adjuntos"
    TNEF_FILE_TOO_BIG = "winmail_adjunto_demasiado_grande"
    SMIME_UNREADABLE = "smime_ilegible"
    SMIME_ENCRYPTED = "smime_cifrado"
    SMIME_UNSUPPORTED = "smime_no_admitido"
    SMIME_DETACHED = "smime_firma_separada"
    SMIME_TOO_BIG = "smime_demasiado_grande"


# The one table of Spanish texts (str.format templates; the placeholders are the keyword
# arguments of `defect`). Values that come from the message arrive already quoted (`quote`).
DESCRIPTIONS: dict[DefectCode, str] = {
    DefectCode.HEADERS_TOO_BIG: (
        "encabezados demasiado grandes (más de {kb} KB); se leyó solo el comienzo"
    ),
    DefectCode.HEADER_LINES_TOO_MANY: (
        "demasiadas líneas de encabezado ({lines} > {limit}, incluidas las líneas de "
        "continuación); se leyeron las primeras"
    ),
    DefectCode.HEADER_TOO_LONG: "encabezado demasiado largo ({names}: más de {kb} KB); se recortó",
    DefectCode.MIME_DELIMITERS_TOO_MANY: (
        "demasiadas partes MIME (más de {limit} delimitadores); se leyeron las primeras"
    ),
    DefectCode.UNREADABLE: "mensaje ilegible ({why}); se guardó como texto",
    DefectCode.HEADER_LINES_DAMAGED: "encabezado con {count} línea(s) dañada(s); se ignoraron",
    DefectCode.MIME_MALFORMED: "MIME mal formado ({why}); se usó el analizador de respaldo",
    DefectCode.MIME_UNREADABLE: "MIME ilegible ({why}); se leyó el cuerpo como texto",
    DefectCode.MIME_TOO_DEEP: "anidamiento MIME demasiado profundo (> {depth}); se ignoró el resto",
    DefectCode.MIME_TRUNCATED: "mensaje MIME truncado (falta el cierre de {boundary})",
    DefectCode.PARTS_TOO_MANY: "demasiadas partes ({count} > {limit}); se ignoraron las restantes",
    DefectCode.ATTACHMENT_TOO_BIG: "adjunto demasiado grande: {name} ({mb:.1f} MB)",
    DefectCode.NOT_UTF8: "texto declarado utf-8 que no es utf-8; se decodificó como windows-1252",
    DefectCode.CHARSET_UNKNOWN: "juego de caracteres desconocido {label}; se decodificó como {used}",
    DefectCode.CHARSET_INVALID_TEXT: "texto inválido para {label}; se reemplazaron caracteres",
    DefectCode.ENCODED_WORD_INVALID: "palabra codificada inválida en encabezado: {word}",
    DefectCode.BASE64_INVALID: "base64 inválido en {name}; se recuperó lo posible",
    DefectCode.DATE_UNREADABLE: "fecha ilegible: {value}",
    DefectCode.TEXT_TRUNCATED: "texto recortado a {limit} caracteres",
    DefectCode.CONTAINER_DAMAGED: "no se pudo abrir el contenedor {what}: está dañado",
    DefectCode.TNEF_TOO_MANY_FILES: (
        "winmail.dat con demasiados adjuntos ({count} > {limit}); se ignoraron los restantes"
    ),
    DefectCode.TNEF_FILE_TOO_BIG: "adjunto demasiado grande dentro de winmail.dat: «{name}»",
    DefectCode.SMIME_UNREADABLE: "contenedor S/MIME ilegible",
    DefectCode.SMIME_ENCRYPTED: "mensaje cifrado (S/MIME): no se puede leer sin la clave",
    DefectCode.SMIME_UNSUPPORTED: "contenedor S/MIME de tipo no admitido ({kind})",
    DefectCode.SMIME_DETACHED: "firma S/MIME sin contenido (firma separada)",
    DefectCode.SMIME_TOO_BIG: "contenido S/MIME demasiado grande",
}

# Defects after which the text was still read in full (a guessed charset, a skipped damaged
# header line): they do not make the message doubtful, so intake does not send it to staff.
SOFT: frozenset[DefectCode] = frozenset(
    {DefectCode.HEADER_LINES_DAMAGED, DefectCode.NOT_UTF8, DefectCode.CHARSET_UNKNOWN}
)


@dataclass(frozen=True)
class Defect:
    """One problem met while parsing: `code` (what code tests) and `text` (Spanish, for staff).

    `str(defect)` is the text, so a defect formats as the sentence people read.
    """

    code: DefectCode
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def soft(self) -> bool:
        """True when the message was still read in full despite it (see `SOFT`)."""
        return self.code in SOFT


def defect(code: DefectCode, **values: object) -> Defect:
    """The Defect for `code`, its text rendered from DESCRIPTIONS with `values`.

    Raises KeyError when a placeholder of the template is missing from `values`.
    """
    return Defect(code, DESCRIPTIONS[code].format(**values))
