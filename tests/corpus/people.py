"""Fictional applicants and the many ways they write their data (labels, layouts, value formats)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Persona:
    """One fictional applicant: every datum as written (raw) and as mailflow must normalise it."""

    nombre: str
    nacionalidad: str
    sexo: tuple[str, str]  # (as written, F/M)
    documento: tuple[str, str, str]  # (label hint, as written, normalised)
    carne: tuple[str, str]
    telefono: tuple[str, str]
    nacimiento: tuple[str, str]
    correo: str
    client: str  # gmail | outlook | hotmail | yahoo | iphone | android


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "Ana María Rodríguez Pérez",
        "venezolana",
        ("Femenino", "F"),
        ("Cédula", "V-18.456.789", "V18456789"),
        ("001234567", "001234567"),
        ("987 654 321", "+51987654321"),
        ("15/03/1990", "1990-03-15"),
        "ana.rodriguez90@gmail.com",
        "gmail",
    ),
    Persona(
        "José Gregorio Hernández Blanco",
        "venezolano",
        ("masculino", "M"),
        ("Pasaporte", "148923765", "148923765"),
        ("CE-000987654", "000987654"),
        ("+51 912 345 678", "+51912345678"),
        ("3 de julio de 1985", "1985-07-03"),
        "jgregorio.hb@hotmail.com",
        "hotmail",
    ),
    Persona(
        "Yusleidy Carolina Marcano Salazar",
        "Venezuela",
        ("F", "F"),
        ("C.I.", "24.117.305", "24117305"),
        ("002345118", "002345118"),
        ("951-222-333", "+51951222333"),
        ("1995-11-02", "1995-11-02"),
        "yusleidy.marcano@yahoo.com",
        "yahoo",
    ),
    Persona(
        "Luis Fernando Castaño Ospina",
        "colombiano",
        ("Masculino", "M"),
        ("Cédula de ciudadanía", "1.020.456.789", "1020456789"),
        ("001876543", "001876543"),
        ("(+51) 963 852 741", "+51963852741"),
        ("22-08-1979", "1979-08-22"),
        "lfcastano@outlook.com",
        "outlook",
    ),
    Persona(
        "Mariela Josefina Díaz Ureña",
        "cubana",
        ("FEMENINO", "F"),
        ("Pasaporte", "k123456", "K123456"),
        ("003456789", "003456789"),
        ("944111222", "+51944111222"),
        ("07/01/1988", "1988-01-07"),
        "mariela.diaz88@gmail.com",
        "iphone",
    ),
    Persona(
        "Ahmad Al Hassan",
        "siria",
        ("M", "M"),
        ("Pasaporte", "N008812345", "N008812345"),
        ("001112223", "001112223"),
        ("+51 999 888 777", "+51999888777"),
        ("1 de enero de 1983", "1983-01-01"),
        "ahmad.hassan.pe@gmail.com",
        "gmail",
    ),
    Persona(
        "Daniela Alejandra Peña Gómez",
        "venezolana",
        ("femenino", "F"),
        ("Cédula", "V 26.789.012", "V26789012"),
        ("002223334", "002223334"),
        ("+58 414 1234567", "+584141234567"),
        ("30/06/1998", "1998-06-30"),
        "dani.pena98@hotmail.com",
        "android",
    ),
    Persona(
        "Carlos Eduardo Mendoza Ruiz",
        "venezolano",
        ("Masculino", "M"),
        ("Pasaporte", "112233445", "112233445"),
        ("000445566", "000445566"),
        ("936 741 852", "+51936741852"),
        ("12 de octubre de 1976", "1976-10-12"),
        "carlosmendoza76@yahoo.es",
        "yahoo",
    ),
    Persona(
        "Jean Baptiste Pierre Louis",
        "haitiano",
        ("Masculino", "M"),
        ("Pasaporte", "HA1234567", "HA1234567"),
        ("003001002", "003001002"),
        ("958 123 456", "+51958123456"),
        ("09/09/1991", "1991-09-09"),
        "jbpierrelouis@gmail.com",
        "android",
    ),
    Persona(
        "Oriana Valentina Rivas Torres",
        "venezolana",
        ("Femenino", "F"),
        ("Cédula", "V-27.654.321", "V27654321"),
        ("002998877", "002998877"),
        ("+51 981 234 567", "+51981234567"),
        ("25/12/2000", "2000-12-25"),
        "oriana.rivas2000@gmail.com",
        "iphone",
    ),
    Persona(
        "Kevin Andrés Rojas Villalobos",
        "colombiano",
        ("masculino", "M"),
        ("Cédula", "1.098.765.432", "1098765432"),
        ("001555444", "001555444"),
        ("970 333 444", "+51970333444"),
        ("18-04-1993", "1993-04-18"),
        "kevin.rojas.v@outlook.com",
        "outlook",
    ),
    Persona(
        "Yamileth del Carmen Briceño",
        "venezolana",
        ("F", "F"),
        ("Pasaporte", "134679852", "134679852"),
        ("002112113", "002112113"),
        ("922 456 789", "+51922456789"),
        ("5 de mayo de 1969", "1969-05-05"),
        "yamibriceno69@hotmail.com",
        "hotmail",
    ),
)

LABELS: dict[str, tuple[str, ...]] = {
    "nombres_apellidos": (
        "Nombres y apellidos",
        "Nombre completo",
        "Apellidos y nombres",
        "Nombre",
    ),
    "nacionalidad": ("Nacionalidad",),
    "documento_identidad": (
        "Documento de identidad",
        "N° de documento",
        "{hint}",
        "Nro. de {hint}",
    ),
    "carne_extranjeria": ("Carné de extranjería", "CE N°", "Carnet de extranjeria", "N° de carné"),
    "telefono": ("Teléfono", "Celular", "Teléfono celular", "Número de contacto", "Cel"),
    "correo": ("Correo electrónico", "Correo", "Email", "E-mail"),
    "sexo": ("Sexo",),
    "fecha_nacimiento": ("Fecha de nacimiento", "F. de nacimiento", "Fecha de nac."),
    "motivo": ("Motivo",),
    "destino": ("Destino", "País de destino", "Lugar de destino"),
    "fecha_salida": ("Fecha de salida", "Fecha de viaje", "Salida"),
    "fecha_retorno": ("Fecha de retorno", "Fecha de regreso", "Retorno"),
    "fecha_notificacion": ("Fecha de notificación", "Fecha en que fui notificado", "Notificado el"),
}
MOTIVO_LABELS: dict[str, tuple[str, ...]] = {
    "reconsideracion": ("Motivo", "Fundamentos del recurso", "Motivo del recurso"),
    "apelacion": ("Motivo", "Fundamentos de la apelación", "Motivo del recurso"),
    "renuncia": ("Motivo", "Motivo de la renuncia"),
    "autorizacion_viaje": ("Motivo del viaje", "Motivo"),
}

Row = tuple[str, str]  # (label, value)


def label(field_id: str, rng: random.Random, persona: Persona, tramite: str = "") -> str:
    """A realistic label for `field_id`."""
    options = (
        MOTIVO_LABELS.get(tramite, LABELS["motivo"]) if field_id == "motivo" else LABELS[field_id]
    )
    return rng.choice(options).replace("{hint}", persona.documento[0])


def render_rows(style: str, rows: list[Row]) -> str:
    """Lay out labelled values the way the chosen writer would."""
    if style == "form":
        return "\n".join(f"{k.upper()}: {v}" for k, v in rows)
    if style == "note":
        return "\n".join(
            f"{k.lower()} {v}" if k.lower() in ("cel", "celular") else f"{k}: {v}" for k, v in rows
        )
    if style == "dash":
        return "\n".join(f"- {k}: {v}" for k, v in rows)
    return "\n".join(f"{k}: {v}" for k, v in rows)


def html_table(intro: str, rows: list[Row], closing: str) -> str:
    """Outlook-style HTML: Calibri paragraphs and a bordered table."""
    cells = "".join(
        f'<tr><td style="border:solid windowtext 1.0pt;padding:0cm 5.4pt"><p class="MsoNormal"><b>'
        f'{escape(k)}</b></p></td><td style="border:solid windowtext 1.0pt;padding:0cm 5.4pt">'
        f'<p class="MsoNormal">{escape(v)}</p></td></tr>'
        for k, v in rows
    )
    paras = "".join(
        f'<p class="MsoNormal">{escape(p)}<o:p></o:p></p>' for p in intro.split("\n") if p
    )
    end = "".join(f'<p class="MsoNormal">{escape(p)}</p>' for p in closing.split("\n") if p)
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style>p.MsoNormal{margin:0cm;font-size:11.0pt;font-family:Calibri,sans-serif}</style>"
        '</head><body lang="ES-PE"><div class="WordSection1">'
        f'{paras}<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        f'<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0">{cells}</table>'
        f'<p class="MsoNormal"><o:p>&nbsp;</o:p></p>{end}</div></body></html>'
    )


def html_divs(intro: str, rows: list[Row], closing: str) -> str:
    """Gmail-style HTML: one div per line, <br> for blank lines."""
    lines = [*intro.split("\n"), "", *(f"{k}: {v}" for k, v in rows), "", *closing.split("\n")]
    divs = "".join(f"<div>{escape(line)}</div>" if line else "<div><br></div>" for line in lines)
    return f'<div dir="ltr">{divs}</div>\r\n'


SIGNOFFS: dict[str, str] = {
    "gmail": "",
    "outlook": "",
    "hotmail": "\n\nEnviado desde Outlook",
    "yahoo": "\n\nEnviado desde Yahoo Mail para Android",
    "iphone": "\n\nEnviado desde mi iPhone",
    "android": "\n\nEnviado desde mi Samsung Galaxy",
}
MAILERS: dict[str, str] = {
    "outlook": "Microsoft Outlook 16.0",
    "hotmail": "",
    "yahoo": "YahooMailAndroidMobile",
    "iphone": "iPhone Mail (20E252)",
}
