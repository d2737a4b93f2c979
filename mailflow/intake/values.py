"""Field values by kind: normalise and validate one value; find values written without a label."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from mailflow.textnorm import fold

KINDS = frozenset(
    [
        "name",
        "text",
        "nationality",
        "document",
        "carne",
        "phone",
        "email",
        "sex",
        "date",
        "long_text",
        "attachment",
    ]
)

MONTHS = {
    "enero": 1, "ene": 1, "febrero": 2, "feb": 2, "marzo": 3, "mar": 3, "abril": 4, "abr": 4,
    "mayo": 5, "may": 5, "junio": 6, "jun": 6, "julio": 7, "jul": 7, "agosto": 8, "ago": 8,
    "septiembre": 9, "setiembre": 9, "sep": 9, "set": 9, "sept": 9, "octubre": 10, "oct": 10,
    "noviembre": 11, "nov": 11, "diciembre": 12, "dic": 12,
}  # fmt: skip

# Canonical nationality (feminine, as Peruvian forms write it) → countries naming it.
NATIONALITIES: dict[str, tuple[str, ...]] = {
    "venezolana": ("venezuela",), "colombiana": ("colombia",), "cubana": ("cuba",),
    "haitiana": ("haiti",), "ecuatoriana": ("ecuador",), "siria": ("siria",),
    "afgana": ("afganistan",), "peruana": ("peru",), "chilena": ("chile",),
    "boliviana": ("bolivia",), "argentina": ("argentina",), "brasileña": ("brasil",),
    "paraguaya": ("paraguay",), "uruguaya": ("uruguay",), "mexicana": ("mexico",),
    "dominicana": ("republica dominicana",), "salvadoreña": ("el salvador",),
    "hondureña": ("honduras",), "guatemalteca": ("guatemala",), "nicaragüense": ("nicaragua",),
    "costarricense": ("costa rica",), "panameña": ("panama",), "estadounidense": ("estados unidos",),
    "española": ("espana",), "rusa": ("rusia",), "ucraniana": ("ucrania",), "china": ("china",),
    "india": ("india",), "pakistaní": ("pakistan",), "bangladesí": ("bangladesh",),
    "camerunesa": ("camerun",), "congoleña": ("congo", "republica democratica del congo"),
    "nigeriana": ("nigeria",), "senegalesa": ("senegal",), "marroquí": ("marruecos",),
    "egipcia": ("egipto",), "iraquí": ("irak", "iraq"), "iraní": ("iran",),
    "palestina": ("palestina",), "libanesa": ("libano",), "yemení": ("yemen",),
    "sudanesa": ("sudan",), "somalí": ("somalia",), "eritrea": ("eritrea",),
    "etíope": ("etiopia",), "turca": ("turquia",), "georgiana": ("georgia",),
    "nepalí": ("nepal",), "ghanesa": ("ghana",), "angoleña": ("angola",),
}  # fmt: skip


def _accent_table() -> dict[str, str]:
    table = {"\u00a0": " ", "º": "°", "ª": "a", "№": "n"}
    for code in range(0xC0, 0x250):
        char = chr(code).lower()
        base = unicodedata.normalize("NFKD", char)[:1]
        if len(char) == 1 and base != char and base.isascii():
            table[char] = base
    return table


_ACCENTS = _accent_table()
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _nationality_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for canon, countries in NATIONALITIES.items():
        key = fold(canon)
        forms = {key, *countries}
        if key.endswith("esa"):
            forms.add(key[:-1])  # camerunes
        elif key.endswith("a"):
            forms.add(key[:-1] + "o")  # venezolano, sirio, brasileno
        forms.update(f"{f}s" for f in list(forms) if not f.endswith("s"))
        for form in forms:
            index[form] = canon
    return index


_NATIONALITY = _nationality_index()
# Shape of a value written without a clear delimiter ("DNI 12345678", "mi celular es 987 654 321").
_SHAPES = {
    "phone": re.compile(r"\(?(?:\+|00)?[ \t]?\(?\d(?:[\-(). \t]{0,3}\d){5,16}"),
    "document": re.compile(r"[a-z]{0,3}[ \t\-]?\d(?:[.\- \t]?\d){3,17}"),
    "carne": re.compile(r"\d(?:[.\- \t]?\d){4,14}"),
    "email": re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"),
    "sex": re.compile(r"(?:femenino|masculino|mujer|hombre|varon|f|m)\b"),
    "nationality": re.compile(r"[a-z]{4,20}"),
    "date": re.compile(
        r"\d{1,2}[ \t]*[/.\-][ \t]*\d{1,2}[ \t]*[/.\-][ \t]*\d{2,4}|\d{4}-\d{2}-\d{2}"
        r"|\d{1,2}(?:[ \t]+de)?[ \t]+[a-z]{3,10}\.?,?(?:[ \t]+(?:de|del))?[ \t]+\d{4}"
    ),
}
NAME_RUN = (
    r"((?:[A-ZÁÉÍÓÚÑÜ][a-záéíóúñü'’-]+|[A-ZÁÉÍÓÚÑÜ'’-]{2,})(?:[ \t]+(?:(?:de|del|la|las|los|y)[ \t]+)*"
    r"(?:[A-ZÁÉÍÓÚÑÜ][a-záéíóúñü'’-]+|[A-ZÁÉÍÓÚÑÜ'’-]{2,})){1,6})"
)
NAME_AT = re.compile(r"[ \t]*,?[ \t]*" + NAME_RUN)
_NAME_INTRO = re.compile(
    r"(?:yo|me llamo|mi nombre (?:completo )?es|el suscrito|la suscrita|(?:el|la) que suscribe"
    r"|quien suscribe)\b"
)
_CLOSING = re.compile(
    r"(?:atentamente|cordialmente|saludos(?: cordiales)?)[ \t]*[,.]?[ \t]*(?:\n(?:[ \t]*\n)?[ \t]*)?"
)
_DMY = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4}|\d{2})")
_YMD = re.compile(r"(\d{4})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})")
_WORDY = re.compile(
    r"(\d{1,2})(?:ro|er|°)?\s+(?:de\s+)?([a-z]{3,10})\s+(?:de\s+|del\s+)?(\d{4}|\d{2})"
)
_EMAIL = re.compile(
    r"[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9\-]+)*\.[a-z]{2,}"
)
_ANGLE = re.compile(r"<([^<>]+@[^<>]+)>")
_DOC_TYPE = re.compile(
    r"^(?:pasaporte|dni|c[ée]dula(?: de identidad)?|ptp|cpp|c\.?i\.?)\b\s*", re.I
)
_MARKER = re.compile(r"^(?:n\s*[°º]|nº|no\.|nro\.?|num\.?|número|numero|#)\s*[:.\-]?\s*", re.I)
_SPACES = re.compile(r"\s+")
_EDGE = re.compile(r"^[\s*_\"'“”«»:;,.\-–—|/]+|[\s*_\"'“”«»:;,\-–—|/]+$")
_PARTICLES = frozenset(
    ["de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "van", "von", "der", "di"]
)
_SEX = {"f": "F", "femenino": "F", "mujer": "F", "fem": "F", "m": "M", "masculino": "M",
        "hombre": "M", "varon": "M", "masc": "M"}  # fmt: skip


def normalise(
    kind: str, raw: str, *, past: bool = False, today: dt.date | None = None
) -> tuple[str | None, str | None]:
    """(normalised value, None) or (None, Spanish reason); `past` marks birth dates."""
    text = _EDGE.sub("", raw.replace("\u00a0", " ")).strip()
    if not text:
        return None, "valor vacío"
    if kind == "date":
        return _date(text, past, today)
    if kind == "sex":
        found = _SEX.get(fold(text).split(" ")[0] if fold(text) else "")
        return (found, None) if found else (None, f"sexo no reconocido: {text} (indique F o M)")
    if kind == "phone":
        return _phone(text)
    if kind in ("carne", "document"):
        text = re.sub(r"\s*\([^)]*\)", "", text).strip() or text
    if kind == "carne":
        digits = re.sub(r"\D", "", text)
        if len(digits) != 9:
            return None, f"el carné de extranjería debe tener 9 dígitos: {text}"
        return digits, None
    if kind == "document":
        value = re.sub(r"[\s.\-/]", "", _MARKER.sub("", _DOC_TYPE.sub("", text))).upper()
        if not (5 <= len(value) <= 15 and value.isascii() and value.isalnum()):
            return None, f"número de documento no válido: {text} (de 5 a 15 letras o dígitos)"
        if not any(c.isdigit() for c in value):
            return None, f"número de documento no válido: {text} (no contiene dígitos)"
        return value, None
    if kind == "email":
        return _email(text)
    if kind == "name":
        return _name(text)
    if kind == "nationality":
        return _nationality(text)
    if kind == "long_text":
        return text, None
    return _SPACES.sub(" ", text), None


def fold_keep_length(text: str) -> str:
    """Lower-case and strip accents character by character, so offsets match the original."""
    low = text.lower()
    if len(low) != len(text):  # a few letters lower-case to two characters (İ): keep them
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    if low.isascii():
        return low
    return _NON_ASCII.sub(lambda m: _ACCENTS.get(m[0], m[0]), low)


def canonical_nationality(text: str) -> str | None:
    """The canonical nationality for a demonym or country ('venezolano', 'Venezuela'), if known."""
    key = fold(text)
    key = re.sub(r"^(?:de\s+)?(?:nacionalidad\s+)?", "", key)
    return _NATIONALITY.get(key)


def value_end(
    kind: str, text: str, folded: str, pos: int, connector: str = "", line_start: bool = False
) -> int | None:
    """End of a value of `kind` starting at `pos` with no delimiter before it, or None if none is.

    `folded` is `text` lower-cased without accents (same offsets); names are read from `text`
    (they must be capitalised) and only after "es" ("mi nombre es …") or, when the label opens
    its line, as the whole rest of the line ("NOMBRES Y APELLIDOS ANA TORRES RUIZ").
    """
    if kind == "name":
        found = NAME_AT.match(text, pos) if " es" in connector or line_start else None
        if found and " es" not in connector and text[found.end() :][:1] not in ("", "\n"):
            return None
        return found.end() if found else None
    shape = _SHAPES.get(kind)
    while folded[pos : pos + 1] in (" ", "\t"):
        pos += 1
    found = shape.match(folded, pos) if shape else None
    if found is None or (kind == "nationality" and canonical_nationality(found[0]) is None):
        return None
    return found.end()


def name_mentions(text: str, folded: str) -> list[tuple[int, str]]:
    """(rank, name) for names in prose ("Yo, Juan Pérez, identificado…": 1) or under a closing (2).

    `folded` is `text` folded by `fold_keep_length` (same offsets).
    """
    found = []
    for rank, pattern in ((1, _NAME_INTRO), (2, _CLOSING)):
        for m in pattern.finditer(folded):
            if m.start() and folded[m.start() - 1].isalnum():
                continue
            name = NAME_AT.match(text, m.end())
            if name and (rank == 1 or text[name.end() : name.end() + 1] in ("", "\n")):
                found.append((rank, name[1]))
    return found


def _date(text: str, past: bool, today: dt.date | None) -> tuple[str | None, str | None]:
    folded = fold(text) if not re.fullmatch(r"[\d\s/.\-]+", text) else text
    if m := _YMD.search(text):
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    elif m := _DMY.search(text):
        d, mo, y = int(m[1]), int(m[2]), _year(m[3], past, today)
    elif (m := _WORDY.search(folded)) and m[2] in MONTHS:
        d, mo, y = int(m[1]), MONTHS[m[2]], _year(m[3], past, today)
    else:
        return None, f"fecha no reconocida: {text} (use dd/mm/aaaa)"
    try:
        value = dt.date(y, mo, d)
    except ValueError:
        return None, f"fecha inexistente: {text}"
    if not 1900 <= value.year <= 2100:
        return None, f"fecha fuera de rango: {text}"
    if past and today is not None and value > today:
        return None, f"la fecha no puede ser posterior a hoy: {text}"
    return value.isoformat(), None


def _year(digits: str, past: bool, today: dt.date | None) -> int:
    year = int(digits)
    if len(digits) == 4:
        return year
    if past:
        limit = (today.year if today else 2029) % 100
        return 2000 + year if year <= limit else 1900 + year
    return 2000 + year if year < 70 else 1900 + year


def _phone(text: str) -> tuple[str | None, str | None]:
    first = re.split(r"\s*(?:/|,|;|\so\s|\sy\s)\s*", text)
    text = next((p for p in first if len(re.sub(r"\D", "", p)) >= 7), first[0])
    stripped = text.lstrip(" (")
    digits = re.sub(r"\D", "", text)
    international = stripped.startswith("+") or stripped.startswith("00")
    if stripped.startswith("00"):
        digits = digits[2:]
    if len(digits) < 7:
        return None, f"teléfono con muy pocos dígitos: {text}"
    if len(digits) > 15:
        return None, f"teléfono con demasiados dígitos: {text}"
    if len(digits) == 11 and digits.startswith("519"):
        return f"+{digits}", None
    if len(digits) == 10 and digits.startswith("511"):
        return f"+{digits}", None
    if not international:
        if len(digits) == 9 and digits.startswith("9"):
            return f"+51{digits}", None
        if len(digits) == 9 and digits.startswith("01"):
            return f"+511{digits[2:]}", None
        if len(digits) == 9 and digits.startswith("0"):
            return f"+51{digits[1:]}", None
        return digits, None
    return f"+{digits}", None


def _email(text: str) -> tuple[str | None, str | None]:
    if m := _ANGLE.search(text):
        text = m[1]
    value = re.sub(r"^mailto:", "", text.strip().lower()).strip(" <>.")
    if _EMAIL.fullmatch(value):
        return value, None
    return None, f"correo electrónico no válido: {text}"


def _name(text: str) -> tuple[str | None, str | None]:
    text = _SPACES.sub(" ", re.sub(r"\([^)]*\)", " ", text)).strip(" ,.;")
    if any(c.isdigit() for c in text):
        return None, f"el nombre no debe contener números: {text}"
    words = text.split(" ")
    letters = sum(c.isalpha() for c in text)
    if len(words) < 2 or letters < 5:
        return None, f"nombre incompleto: {text} (indique nombres y apellidos)"
    out = [_name_word(w, i == 0) for i, w in enumerate(words)]
    return " ".join(out), None


def _name_word(word: str, first: bool) -> str:
    if not first and word.lower() in _PARTICLES:
        return word.lower()
    if not (word.isupper() or word.islower()):
        return word  # already mixed case: trust the writer (McDonald, DaSilva)
    return re.sub(r"[^\W\d_]+", lambda m: m[0][0].upper() + m[0][1:].lower(), word)


def _nationality(text: str) -> tuple[str | None, str | None]:
    if any(c.isdigit() for c in text):
        return None, f"nacionalidad no válida: {text}"
    canon = canonical_nationality(text)
    if canon:
        return canon, None
    return _SPACES.sub(" ", text).lower(), None
