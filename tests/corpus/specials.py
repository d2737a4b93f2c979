"""Generated messages that are hostile or odd by construction: huge, many-part, suspended procedure."""

from __future__ import annotations

import os

from tests.corpus.build import Mail, Part
from tests.corpus.compose import Case, Expect, Kit

DATE = "Tue, 10 Mar 2026 11:30:00 -0500"
PRORROGA_BODY = """Señores:
Solicito la prórroga de mi residencia. Adjunto foto de mi carné.

Nombres y apellidos: Kevin Andrés Rojas Villalobos
Sexo: masculino
Nacionalidad: colombiana
Cédula: 1.098.765.432
Carné de extranjería: 001555444
Fecha de nacimiento: 18/04/1993
Celular: 970 333 444

Atentamente,
Kevin Rojas"""
ACTUALIZACION_BODY = """Buenos días, quiero actualizar mis datos, adjunto mis documentos escaneados hoja por hoja.

Nombre completo: Ana María Rodríguez Pérez
Nacionalidad: venezolana
Cédula: V-18.456.789
Teléfono: 987 654 321
"""


def oversized(kit: Kit, *, extra: int = 1 << 20, limit: int = 26214400) -> bytes:
    """A complete request with a photo larger than the configured attachment limit."""
    photo = b"\xff\xd8\xff\xe0" + os.urandom(1024) * ((limit + extra) // 1024)
    return Mail(
        "Prórroga de residencia",
        "Kevin Rojas <kevin.rojas.v@outlook.com>",
        DATE,
        PRORROGA_BODY,
        attachments=(Part("IMG_20260310_112233.jpg", "image/jpeg", photo),),
    ).render()


def thousand_parts(kit: Kit) -> bytes:
    """A complete request followed by 999 tiny attachments."""
    parts = tuple(
        Part(f"hoja_{i:04d}.txt", "text/plain", f"hoja {i}\n".encode()) for i in range(999)
    )
    return Mail(
        "Actualización de datos",
        "Ana Rodríguez <ana.rodriguez90@gmail.com>",
        DATE,
        ACTUALIZACION_BODY,
        attachments=parts,
    ).render()


def carne_solicitante(n: int, subject: str, body: str, sender: str) -> Case:
    def make(kit: Kit) -> bytes:
        return Mail(subject, sender, DATE, body, transfer="8bit").render()

    return Case(f"carne_solicitante-{n:02d}", Expect("inform", "carne_solicitante"), make)


SPECIAL_CASES: list[Case] = [
    Case(
        "hostile-oversized-attachment",
        Expect(
            "review",
            "prorroga_residencia",
            (),
            "absent",
            {
                "carne_extranjeria": "001555444",
                "telefono": "+51970333444",
                "sexo": "M",
                "fecha_nacimiento": "1993-04-18",
                "documento_identidad": "1098765432",
            },
        ),
        oversized,
    ),
    Case(
        "hostile-1000-parts",
        Expect(
            "review",
            "actualizacion_datos",
            (),
            "absent",
            {"telefono": "+51987654321", "documento_identidad": "V18456789"},
        ),
        thousand_parts,
    ),
    carne_solicitante(
        1,
        "Carné de solicitante",
        "Buenos días, quisiera saber cuándo puedo tramitar mi carné de "
        "solicitante.\nMi nombre es Jean Baptiste Pierre Louis, pasaporte HA1234567.\nGracias",
        "Jean Baptiste <jbpierrelouis@gmail.com>",
    ),
    carne_solicitante(
        2,
        "RE: renovacion de carnet de solicitante",
        "buenas mi carnet de solicitante ya vencio "
        "como hago para renovarlo?\n\nEnviado desde mi iPhone",
        "mariela.diaz88@gmail.com",
    ),
    carne_solicitante(
        3,
        "CARNE DE SOLICITANTE DE REFUGIO",
        "Señores, solicito la emisión de mi carné de solicitante "
        "de refugio.\nAtentamente,\nYamileth Briceño",
        "Yamileth <yamibriceno69@hotmail.com>",
    ),
]
