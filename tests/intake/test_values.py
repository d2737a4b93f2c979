"""Normalisation and validation of single field values (mailflow.intake.values)."""

from __future__ import annotations

import datetime as dt

import pytest

from mailflow.intake.values import canonical_nationality, normalise, value_end

VALID = [
    # dates: day first, always
    ("date", "23/11/2026", "2026-11-23"),
    ("date", "23-11-2026", "2026-11-23"),
    ("date", "23.11.2026", "2026-11-23"),
    ("date", "3/2/2026", "2026-02-03"),
    ("date", "03/02/26", "2026-02-03"),
    ("date", "1/12/99", "1999-12-01"),
    ("date", "23 de noviembre de 2026", "2026-11-23"),
    ("date", "23 de Noviembre del 2026", "2026-11-23"),
    ("date", "lunes 23 de noviembre de 2026", "2026-11-23"),
    ("date", "23 nov 2026", "2026-11-23"),
    ("date", "23 nov. 2026", "2026-11-23"),
    ("date", "1ro de setiembre de 2025", "2025-09-01"),
    ("date", "15 SETIEMBRE 2025", "2025-09-15"),
    ("date", "7 de diciembre, 2026", "2026-12-07"),
    ("date", "2026-11-23", "2026-11-23"),
    ("date", "29/02/2024", "2024-02-29"),
    ("date", "  12 / 03 / 1990 ", "1990-03-12"),
    # sex
    ("sex", "F", "F"),
    ("sex", "femenino", "F"),
    ("sex", "Mujer", "F"),
    ("sex", "M", "M"),
    ("sex", "Masculino", "M"),
    ("sex", "HOMBRE", "M"),
    ("sex", "Varón", "M"),
    ("sex", "f.", "F"),
    # phones
    ("phone", "987654321", "+51987654321"),
    ("phone", "987 654 321", "+51987654321"),
    ("phone", "987-654-321", "+51987654321"),
    ("phone", "+51 987 654 321", "+51987654321"),
    ("phone", "+51-987-654-321", "+51987654321"),
    ("phone", "0051 987654321", "+51987654321"),
    ("phone", "51987654321", "+51987654321"),
    ("phone", "(+51) 987 654 321", "+51987654321"),
    ("phone", "(01) 234-5678", "+5112345678"),
    ("phone", "01 2345678", "+5112345678"),
    ("phone", "+51 1 2345678", "+5112345678"),
    ("phone", "(044) 123456", "+5144123456"),
    ("phone", "+58 412-1234567", "+584121234567"),
    ("phone", "0058 412 1234567", "+584121234567"),
    ("phone", "987654321 / 912345678", "+51987654321"),
    ("phone", "2345678", "2345678"),
    # carné de extranjería: nine digits, zeros kept
    ("carne", "001234567", "001234567"),
    ("carne", "001 234 567", "001234567"),
    ("carne", "N° 001234567", "001234567"),
    ("carne", "000-123-456", "000123456"),
    # documents
    ("document", "123456789", "123456789"),
    ("document", "V-18.765.432", "V18765432"),
    ("document", "ab 123 456", "AB123456"),
    ("document", "N° 012345678", "012345678"),
    ("document", "Pasaporte 123456789", "123456789"),
    ("document", "Nro. 1234567", "1234567"),
    # e-mail
    ("email", "Juan.Perez@Gmail.COM", "juan.perez@gmail.com"),
    ("email", "mailto:ana+cepr@hotmail.com", "ana+cepr@hotmail.com"),
    ("email", "Juan Pérez <juan@yahoo.es>", "juan@yahoo.es"),
    ("email", "<maria_lopez@outlook.com>.", "maria_lopez@outlook.com"),
    # names
    ("name", "JUAN PÉREZ GARCÍA", "Juan Pérez García"),
    ("name", "maría  de la  cruz   lópez", "María de la Cruz López"),
    ("name", "José Del Castillo", "José del Castillo"),
    ("name", "ana maría d'angelo", "Ana María D'Angelo"),
    ("name", "Carlos McDonald Ruiz", "Carlos McDonald Ruiz"),
    ("name", "PÉREZ-GARCÍA, luis", "Pérez-García, Luis"),
    ("name", "*Yorman José Rodríguez*", "Yorman José Rodríguez"),
    # nationalities
    ("nationality", "Venezolana", "venezolana"),
    ("nationality", "VENEZOLANO", "venezolana"),
    ("nationality", "Venezuela", "venezolana"),
    ("nationality", "colombiano", "colombiana"),
    ("nationality", "Cuba", "cubana"),
    ("nationality", "haitiano", "haitiana"),
    ("nationality", "Haití", "haitiana"),
    ("nationality", "ecuatoriano", "ecuatoriana"),
    ("nationality", "sirio", "siria"),
    ("nationality", "Afganistán", "afgana"),
    ("nationality", "camerunés", "camerunesa"),
    ("nationality", "brasileño", "brasileña"),
    ("nationality", "de nacionalidad venezolana", "venezolana"),
    ("nationality", "Apátrida", "apátrida"),
    # text
    ("text", "  Santiago   de Chile ", "Santiago de Chile"),
    ("long_text", "Viajo por\nmotivos de salud.", "Viajo por\nmotivos de salud."),
]

INVALID = [
    ("date", "31/02/2020", "fecha inexistente: 31/02/2020"),
    ("date", "45/13/2020", "fecha inexistente: 45/13/2020"),
    ("date", "11/23/2026", "fecha inexistente: 11/23/2026"),
    ("date", "mañana", "fecha no reconocida: mañana (use dd/mm/aaaa)"),
    (
        "date",
        "23 de brumario de 2026",
        "fecha no reconocida: 23 de brumario de 2026 (use dd/mm/aaaa)",
    ),
    ("date", "12/03/1850", "fecha fuera de rango: 12/03/1850"),
    ("sex", "X", "sexo no reconocido: X (indique F o M)"),
    ("sex", "otro", "sexo no reconocido: otro (indique F o M)"),
    ("phone", "12345", "teléfono con muy pocos dígitos: 12345"),
    ("phone", "no tengo", "teléfono con muy pocos dígitos: no tengo"),
    (
        "phone",
        "+51 9876 5432 1234 5678",
        "teléfono con demasiados dígitos: +51 9876 5432 1234 5678",
    ),
    ("carne", "12345678", "el carné de extranjería debe tener 9 dígitos: 12345678"),
    ("carne", "0012345678", "el carné de extranjería debe tener 9 dígitos: 0012345678"),
    ("carne", "en trámite", "el carné de extranjería debe tener 9 dígitos: en trámite"),
    ("document", "1234", "número de documento no válido: 1234 (de 5 a 15 letras o dígitos)"),
    ("document", "adjunto", "número de documento no válido: adjunto (no contiene dígitos)"),
    (
        "document",
        "1234567890123456",
        "número de documento no válido: 1234567890123456 (de 5 a 15 letras o dígitos)",
    ),
    ("email", "juan@gmail", "correo electrónico no válido: juan@gmail"),
    ("email", "juan perez@gmail.com", "correo electrónico no válido: juan perez@gmail.com"),
    ("name", "Juan123 Pérez", "el nombre no debe contener números: Juan123 Pérez"),
    ("name", "Juan", "nombre incompleto: Juan (indique nombres y apellidos)"),
    ("name", "A B", "nombre incompleto: A B (indique nombres y apellidos)"),
    ("nationality", "12345", "nacionalidad no válida: 12345"),
    ("text", "   ", "valor vacío"),
    ("long_text", "", "valor vacío"),
]


@pytest.mark.parametrize(("kind", "raw", "expected"), VALID)
def test_valid_values_are_normalised(kind: str, raw: str, expected: str) -> None:
    assert normalise(kind, raw) == (expected, None)


@pytest.mark.parametrize(("kind", "raw", "reason"), INVALID)
def test_invalid_values_get_a_spanish_reason(kind: str, raw: str, reason: str) -> None:
    assert normalise(kind, raw) == (None, reason)


TODAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12/03/90", "1990-03-12"),
        ("12/03/05", "2005-03-12"),
        ("12/03/26", "2026-03-12"),
        ("12/03/27", "1927-03-12"),
        ("12/03/45", "1945-03-12"),
    ],
)
def test_birth_dates_with_two_digit_years_lie_in_the_past(raw: str, expected: str) -> None:
    assert normalise("date", raw, past=True, today=TODAY) == (expected, None)


def test_two_digit_years_of_ordinary_dates_pivot_at_70() -> None:
    assert normalise("date", "01/01/45")[0] == "2045-01-01"
    assert normalise("date", "01/01/70")[0] == "1970-01-01"


def test_past_dates_cannot_be_in_the_future() -> None:
    assert normalise("date", "01/01/2030", past=True, today=TODAY) == (
        None,
        "la fecha no puede ser posterior a hoy: 01/01/2030",
    )
    assert normalise("date", "01/01/2030", past=True) == ("2030-01-01", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("VENEZOLANOS", "venezolana"), ("Perú", "peruana"), ("de nacionalidad siria", "siria")],
)
def test_canonical_nationality(text: str, expected: str) -> None:
    assert canonical_nationality(text) == expected


def test_canonical_nationality_unknown_is_none() -> None:
    assert canonical_nationality("marciana") is None


@pytest.mark.parametrize(
    ("kind", "text", "connector", "expected"),
    [
        ("phone", "987 654 321 (whatsapp)", "", "987 654 321"),
        ("document", "v-18765432, con domicilio", "", "v-18765432"),
        ("carne", "001234567 vigente", "", "001234567"),
        ("date", "12/03/1990 en caracas", "", "12/03/1990"),
        ("date", "5 de julio de 1988, en", "", "5 de julio de 1988"),
        ("nationality", "venezolana, con", "", "venezolana"),
        ("sex", "f y", "", "f"),
        ("email", "ana@x.pe, gracias", "", "ana@x.pe"),
    ],
)
def test_value_end_finds_the_shape_of_an_undelimited_value(
    kind: str, text: str, connector: str, expected: str
) -> None:
    end = value_end(kind, text, text, 0, connector)
    assert end is not None
    assert text[:end] == expected


@pytest.mark.parametrize(
    ("kind", "text", "connector"),
    [
        ("phone", "no tengo", ""),
        ("document", "de identidad", ""),
        ("nationality", "refugiado", ""),
        ("name", "Juan Pérez", ""),  # a name needs "es": "mi nombre es Juan Pérez"
        ("name", "juan pérez", " es"),  # and capitals
    ],
)
def test_value_end_rejects_what_does_not_look_like_the_kind(
    kind: str, text: str, connector: str
) -> None:
    assert value_end(kind, text, text.lower(), 0, connector) is None


def test_value_end_reads_names_after_es() -> None:
    text = " Juan Pérez García y solicito"
    end = value_end("name", text, text.lower(), 0, " es")
    assert end is not None and text[:end].strip() == "Juan Pérez García"
