"""Field vocabulary loading and extraction of field values from bodies, PDFs and forms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.errors import DefinitionError
from mailflow.intake.fields import (
    FieldValue,
    FieldVocabulary,
    detect_refugiado,
    extract_fields,
    extract_pdf_form_fields,
    fold_keep_length,
    load_field_vocabulary,
    strip_quoted,
)

RULES = Path(__file__).resolve().parents[2] / "rules" / "fields.yaml"


@pytest.fixture(scope="module")
def vocab() -> FieldVocabulary:
    return load_field_vocabulary(RULES)


def values(
    text: str,
    vocab: FieldVocabulary,
    wanted: set[str] | None = None,
    today: dt.date | None = None,
) -> dict[str, str | None]:
    return {k: v.value for k, v in extract_fields(text, vocab, wanted, today=today).items()}


# --- one labelled field per line, in the layouts people use -------------------------------------

LAYOUTS = [
    ("Nombre: Juan Pérez García", "nombres_apellidos", "Juan Pérez García"),
    ("Nombre completo - Juan Pérez García", "nombres_apellidos", "Juan Pérez García"),
    ("Nombres = Juan Pérez García", "nombres_apellidos", "Juan Pérez García"),
    ("APELLIDOS Y NOMBRES:PÉREZ GARCÍA JUAN", "nombres_apellidos", "Pérez García Juan"),
    ("Nombre completo ..........: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("Nombre completo……: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("| Nombre | Juan Pérez |", "nombres_apellidos", "Juan Pérez"),
    ("Nombre\tJuan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("Nombre:\t\tJuan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("1. Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("1.- Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("a) Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("- Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("• Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("*Nombre:* Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("**Nombre**: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("> Nombre: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("Solicitante: Juan Pérez", "nombres_apellidos", "Juan Pérez"),
    ("Celular: 987654321", "telefono", "+51987654321"),
    ("Telf.: 987 654 321", "telefono", "+51987654321"),
    ("Tel: (01) 234-5678", "telefono", "+5112345678"),
    ("Teléfono de contacto: +51 987-654-321", "telefono", "+51987654321"),
    ("TELEFONO DE CONTACTO: 987654321", "telefono", "+51987654321"),
    ("Número de celular: 987654321", "telefono", "+51987654321"),
    ("N° de celular: 987654321", "telefono", "+51987654321"),
    ("WhatsApp: +58 412 1234567", "telefono", "+584121234567"),
    ("Móvil: 987654321", "telefono", "+51987654321"),
    ("Celular 987654321", "telefono", "+51987654321"),
    ("CE N°: 001234567", "carne_extranjeria", "001234567"),
    ("CE Nº 001234567", "carne_extranjeria", "001234567"),
    ("CE: 001234567", "carne_extranjeria", "001234567"),
    ("C.E.: 001234567", "carne_extranjeria", "001234567"),
    ("C.E. N° 001234567", "carne_extranjeria", "001234567"),
    ("Carnet de extranjería: 001234567", "carne_extranjeria", "001234567"),
    ("Carné de Extranjería N° 001234567", "carne_extranjeria", "001234567"),
    ("CARNE DE EXTRANJERIA NRO. 001234567", "carne_extranjeria", "001234567"),
    ("N° de carné: 001234567", "carne_extranjeria", "001234567"),
    ("Nro. de cédula: V-18.765.432", "documento_identidad", "V18765432"),
    ("Cédula: 18765432", "documento_identidad", "18765432"),
    ("Cédula de identidad N° 18765432", "documento_identidad", "18765432"),
    ("Pasaporte N°: 123456789", "documento_identidad", "123456789"),
    ("Pasaporte No. 123456789", "documento_identidad", "123456789"),
    ("Pasaporte #123456789", "documento_identidad", "123456789"),
    ("PASAPORTE: AB1234567", "documento_identidad", "AB1234567"),
    ("DNI: 12345678", "documento_identidad", "12345678"),
    ("Documento de identidad: 123456789", "documento_identidad", "123456789"),
    ("N° de documento: 123456789", "documento_identidad", "123456789"),
    ("Tipo y número de documento: Pasaporte 123456789", "documento_identidad", "123456789"),
    ("PTP: 1234567", "documento_identidad", "1234567"),
    ("Correo electrónico: Juan.Perez@Gmail.com", "correo", "juan.perez@gmail.com"),
    ("E-mail: juan@gmail.com", "correo", "juan@gmail.com"),
    ("Email: juan@gmail.com", "correo", "juan@gmail.com"),
    ("Correo: juan@gmail.com", "correo", "juan@gmail.com"),
    ("Sexo: F", "sexo", "F"),
    ("Sexo: Masculino", "sexo", "M"),
    ("Género: mujer", "sexo", "F"),
    ("Fecha de nacimiento: 05/07/1988", "fecha_nacimiento", "1988-07-05"),
    ("F. nacimiento: 5-7-1988", "fecha_nacimiento", "1988-07-05"),
    ("Fecha de Nac.: 05.07.1988", "fecha_nacimiento", "1988-07-05"),
    ("Nacionalidad: Venezolana", "nacionalidad", "venezolana"),
    ("País de origen: Colombia", "nacionalidad", "colombiana"),
    ("Motivo: Viaje por salud de mi madre.", "motivo", "Viaje por salud de mi madre."),
    ("Fundamento: No se valoraron mis pruebas.", "motivo", "No se valoraron mis pruebas."),
    ("Sustento: Error en la notificación.", "motivo", "Error en la notificación."),
    ("Destino: Chile", "destino", "Chile"),
    ("País de destino: Colombia", "destino", "Colombia"),
    ("Fecha de salida: 23 de noviembre de 2026", "fecha_salida", "2026-11-23"),
    ("Fecha de viaje: 23/11/2026", "fecha_salida", "2026-11-23"),
    ("Fecha de retorno: 10 dic 2026", "fecha_retorno", "2026-12-10"),
    ("Fecha de regreso: 10/12/2026", "fecha_retorno", "2026-12-10"),
    ("Fecha de notificación: 2026-11-02", "fecha_notificacion", "2026-11-02"),
    ("Notificado el: 02/11/2026", "fecha_notificacion", "2026-11-02"),
]


@pytest.mark.parametrize(("text", "field", "expected"), LAYOUTS)
def test_labelled_layouts(vocab: FieldVocabulary, text: str, field: str, expected: str) -> None:
    found = extract_fields(text, vocab)
    assert field in found, found
    assert found[field].value == expected
    assert found[field].error is None


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("Nombre:\nJuan Pérez García", "nombres_apellidos", "Juan Pérez García"),
        ("Nombre\nJuan Pérez García", "nombres_apellidos", "Juan Pérez García"),
        ("CELULAR\n\n987654321", "telefono", "+51987654321"),
        ("Fecha de nacimiento:\n  12/03/1990", "fecha_nacimiento", "1990-03-12"),
        ("**Correo electrónico**\nana@gmail.com", "correo", "ana@gmail.com"),
    ],
)
def test_value_on_the_next_line(
    vocab: FieldVocabulary, text: str, field: str, expected: str
) -> None:
    assert values(text, vocab)[field] == expected


def test_label_alone_followed_by_another_label_is_an_empty_value(vocab: FieldVocabulary) -> None:
    found = extract_fields("Nombre:\nDNI: 12345678", vocab)
    assert found["nombres_apellidos"] == FieldValue("", None, "valor vacío", "cuerpo")
    assert found["documento_identidad"].value == "12345678"


# --- several fields on one line, and labels that must not be swallowed --------------------------

ONE_LINE = [
    (
        "DNI: 12345678, Celular: 987654321",
        {"documento_identidad": "12345678", "telefono": "+51987654321"},
    ),
    (
        "Nombre: Juan Pérez / CE: 001234567 / Tel: 987654321",
        {
            "nombres_apellidos": "Juan Pérez",
            "carne_extranjeria": "001234567",
            "telefono": "+51987654321",
        },
    ),
    (
        "Nombre: Juan Pérez DNI: 12345678",
        {"nombres_apellidos": "Juan Pérez", "documento_identidad": "12345678"},
    ),
    (
        "Nombre: Juan Pérez Dirección: Av. Lima 123",
        {"nombres_apellidos": "Juan Pérez"},
    ),
    (
        "Pasaporte: 123456789; Sexo: M; Nacionalidad: cubano",
        {"documento_identidad": "123456789", "sexo": "M", "nacionalidad": "cubana"},
    ),
    (
        "Nombre\tJuan Pérez\tDNI\t12345678",
        {"nombres_apellidos": "Juan Pérez", "documento_identidad": "12345678"},
    ),
    (
        "| Nombre | Juan Pérez | Celular | 987654321 |",
        {"nombres_apellidos": "Juan Pérez", "telefono": "+51987654321"},
    ),
    (
        "DNI: 12345678 celular 987654321",
        {"documento_identidad": "12345678", "telefono": "+51987654321"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), ONE_LINE)
def test_several_fields_on_one_line(
    vocab: FieldVocabulary, text: str, expected: dict[str, str]
) -> None:
    assert values(text, vocab) == expected


def test_longest_label_wins(vocab: FieldVocabulary) -> None:
    found = values("Fecha de nacimiento: 01/02/1990\nCarné de extranjería: 001234567", vocab)
    assert found == {"fecha_nacimiento": "1990-02-01", "carne_extranjeria": "001234567"}


def test_ignored_labels_are_not_read_as_shorter_field_labels(vocab: FieldVocabulary) -> None:
    text = (
        "Lugar de nacimiento: Caracas\nNombre de la madre: Ana Ruiz\nCarné de solicitante: 123456"
    )
    assert values(text, vocab) == {}


def test_label_words_inside_prose_are_not_labels(vocab: FieldVocabulary) -> None:
    text = (
        "Nombre de mi hijo menor es parte del expediente.\n"
        "El motivo de mi viaje es familiar y el destino aún no está definido.\n"
        "Documento adjunto a este correo."
    )
    assert values(text, vocab) == {}


# --- prose -------------------------------------------------------------------------------------

INLINE = [
    (
        "Me llamo Juan Pérez, identificado con pasaporte N° 123456789.",
        {"nombres_apellidos": "Juan Pérez", "documento_identidad": "123456789"},
    ),
    (
        "Mi nombre es María José Rodríguez y mi número de celular es 987 654 321.",
        {"nombres_apellidos": "María José Rodríguez", "telefono": "+51987654321"},
    ),
    ("mi celular es 987654321", {"telefono": "+51987654321"}),
    ("mi teléfono es el +51 987 654 321, gracias", {"telefono": "+51987654321"}),
    ("identificada con cédula de identidad N° V-18765432", {"documento_identidad": "V18765432"}),
    ("identificado con cédula venezolana N° 18765432", {"documento_identidad": "18765432"}),
    ("con pasaporte venezolano N° 123456789, ", {"documento_identidad": "123456789"}),
    ("identificado con DNI 12345678", {"documento_identidad": "12345678"}),
    ("identificado con carné de extranjería N° 001234567", {"carne_extranjeria": "001234567"}),
    ("con CE N° 001234567", {"carne_extranjeria": "001234567"}),
    ("de nacionalidad venezolana, mayor de edad", {"nacionalidad": "venezolana"}),
    ("soy ciudadano colombiano", {"nacionalidad": "colombiana"}),
    ("nacido el 12/03/1990 en Maracaibo", {"fecha_nacimiento": "1990-03-12"}),
    ("nacida el 5 de julio de 1988", {"fecha_nacimiento": "1988-07-05"}),
    ("fui notificado el 02/11/2026 con la resolución", {"fecha_notificacion": "2026-11-02"}),
    ("mi correo es ana.perez@gmail.com", {"correo": "ana.perez@gmail.com"}),
]


@pytest.mark.parametrize(("text", "expected"), INLINE)
def test_inline_phrasings(vocab: FieldVocabulary, text: str, expected: dict[str, str]) -> None:
    assert values(text, vocab) == expected


def test_carne_de_solicitante_is_not_a_carne_de_extranjeria(vocab: FieldVocabulary) -> None:
    assert values("tengo carné de solicitante N° 123456789", vocab) == {}


def test_formal_letter(vocab: FieldVocabulary) -> None:
    text = (
        "Señores\nComisión Especial para los Refugiados\nPresente.-\n\n"
        "Yo, YORMAN JOSÉ RODRÍGUEZ PÉREZ, identificado con pasaporte N° 123456789, de "
        "nacionalidad venezolana, con carné de extranjería N° 001234567, domiciliado en Av. "
        "Arequipa 1234, Lince, ante ustedes me presento y digo:\n\n"
        "Que, habiendo sido notificado el 02/11/2026 con la resolución que deniega mi solicitud, "
        "interpongo recurso de reconsideración.\n\n"
        "Fundamentos de hecho y de derecho:\n"
        "La resolución no valoró las pruebas presentadas.\n"
        "Adjunto nuevas pruebas.\n\n"
        "Celular: 987 654 321\nCorreo: yorman.rodriguez@gmail.com\n\n"
        "Atentamente,\nYorman José Rodríguez Pérez\n"
    )
    assert values(text, vocab) == {
        "nombres_apellidos": "Yorman José Rodríguez Pérez",
        "documento_identidad": "123456789",
        "nacionalidad": "venezolana",
        "carne_extranjeria": "001234567",
        "fecha_notificacion": "2026-11-02",
        "motivo": "La resolución no valoró las pruebas presentadas.\nAdjunto nuevas pruebas.",
        "telefono": "+51987654321",
        "correo": "yorman.rodriguez@gmail.com",
    }


def test_whatsapp_style_note(vocab: FieldVocabulary) -> None:
    text = "buenas tardes quiero actualizar mis datos\nnombre: ana ruiz soto\ncel 912345678\nnacionalidad venezolana\npasaporte 123456789"
    assert values(text, vocab) == {
        "nombres_apellidos": "Ana Ruiz Soto",
        "telefono": "+51912345678",
        "nacionalidad": "venezolana",
        "documento_identidad": "123456789",
    }


def test_form_pasted_from_word(vocab: FieldVocabulary) -> None:
    text = (
        "DATOS DEL SOLICITANTE\r\n"
        "Apellidos y nombres\t:\tRUIZ SOTO, ANA MARÍA\r\n"
        "Sexo\t:\tF\r\n"
        "Fecha de nacimiento\t:\t01/02/1990\r\n"
        "Nacionalidad\t:\tHAITÍ\r\n"
        "Pasaporte N°\t:\tPA-123456\r\n"
        "CE N°\t:\t001234567\r\n"
        "Teléfono\t:\t987654321\r\n"
    )
    assert values(text, vocab) == {
        "nombres_apellidos": "Ruiz Soto, Ana María",
        "sexo": "F",
        "fecha_nacimiento": "1990-02-01",
        "nacionalidad": "haitiana",
        "documento_identidad": "PA123456",
        "carne_extranjeria": "001234567",
        "telefono": "+51987654321",
    }


def test_html_table_leftovers(vocab: FieldVocabulary) -> None:
    text = (
        "Datos | Valor\n---|---\nNombre | Carlos Mendoza Ríos\nDNI | 12345678\n"
        "Motivo | Viaje por salud\nDestino | Colombia\nFecha de salida | 01/12/2026\n"
        "Fecha de retorno | 15/12/2026\n"
    )
    assert values(text, vocab) == {
        "nombres_apellidos": "Carlos Mendoza Ríos",
        "documento_identidad": "12345678",
        "motivo": "Viaje por salud",
        "destino": "Colombia",
        "fecha_salida": "2026-12-01",
        "fecha_retorno": "2026-12-15",
    }


def test_motivo_spans_lines_until_a_blank_line_or_label(vocab: FieldVocabulary) -> None:
    text = "Motivo: mi madre está enferma\ny debo visitarla en Caracas.\nDestino: Venezuela"
    found = values(text, vocab)
    assert found["motivo"] == "mi madre está enferma\ny debo visitarla en Caracas."
    assert found["destino"] == "Venezuela"


# --- choosing among several values, errors and sources ------------------------------------------


def test_invalid_value_is_reported_with_reason_and_source(vocab: FieldVocabulary) -> None:
    found = extract_fields(
        "CE N°: 1234567\nFecha de nacimiento: 31/02/1990", vocab, source="pdf:a.pdf"
    )
    assert found["carne_extranjeria"] == FieldValue(
        "1234567", None, "el carné de extranjería debe tener 9 dígitos: 1234567", "pdf:a.pdf"
    )
    assert found["fecha_nacimiento"].error == "fecha inexistente: 31/02/1990"


def test_a_valid_value_beats_an_earlier_invalid_one(vocab: FieldVocabulary) -> None:
    found = extract_fields("Celular: 123\nmi celular es 987654321", vocab)
    assert found["telefono"].value == "+51987654321"


def test_labelled_value_beats_inline_value(vocab: FieldVocabulary) -> None:
    text = "identificado con pasaporte N° 111111111\nDNI: 12345678"
    assert values(text, vocab)["documento_identidad"] == "12345678"


def test_wanted_restricts_the_result(vocab: FieldVocabulary) -> None:
    text = "Nombre: Juan Pérez\nDNI: 12345678, Celular: 987654321"
    assert values(text, vocab, wanted={"telefono"}) == {"telefono": "+51987654321"}


def test_attachment_fields_are_never_read_from_text(vocab: FieldVocabulary) -> None:
    assert values("Denuncia policial: adjunta\nAdjunto la denuncia policial.", vocab) == {}


def test_birth_date_two_digit_year_uses_today(vocab: FieldVocabulary) -> None:
    found = values("Fecha de nacimiento: 01/02/30", vocab, today=dt.date(2026, 11, 23))
    assert found["fecha_nacimiento"] == "1930-02-01"


def test_crlf_latin1_accents_and_nbsp(vocab: FieldVocabulary) -> None:
    text = "NÚMERO\u00a0DE CÉDULA:\u00a0V-12.345.678\r\nTELÉFONO:\u00a0987\u00a0654\u00a0321\r\n"
    assert values(text, vocab) == {"documento_identidad": "V12345678", "telefono": "+51987654321"}


def test_fold_keeps_offsets() -> None:
    text = "CÉDULA Nº İstanbul ñandú"
    folded = fold_keep_length(text)
    assert len(folded) == len(text)
    assert folded.startswith("cedula n° ")
    assert folded.endswith("nandu")


# --- PDF form fields --------------------------------------------------------------------------


def test_pdf_form_fields_map_through_the_labels(vocab: FieldVocabulary) -> None:
    form = {
        "nombre_completo": "JUAN PÉREZ",
        "Celular": "987654321",
        "NroCE": "001234567",
        "FechaNacimiento": "01/02/1990",
        "txtCorreo": "juan@gmail.com",
        "Texto1": "irrelevante",
        "Firma": "",
        "sexo": "",
    }
    found = extract_pdf_form_fields(form, vocab, "formulario:f.pdf")
    assert {k: v.value for k, v in found.items()} == {
        "nombres_apellidos": "Juan Pérez",
        "telefono": "+51987654321",
        "carne_extranjeria": "001234567",
        "fecha_nacimiento": "1990-02-01",
        "correo": "juan@gmail.com",
    }
    assert {v.source for v in found.values()} == {"formulario:f.pdf"}


# --- quoted replies and signatures --------------------------------------------------------------

QUOTED = [
    (
        "Adjunto lo solicitado.\nCelular: 987654321\n\n"
        "El lun., 23 nov. 2026 a las 10:15, Mesa de Partes (<mesadepartes@cepr.gob.pe>) escribió:\n"
        "> Estimado usuario, indique su DNI: 99999999\n",
        "Adjunto lo solicitado.\nCelular: 987654321",
    ),
    (
        "Envío mis datos.\n\nEl 23/11/2026 10:15, Mesa de Partes\n<mesadepartes@cepr.gob.pe> escribió:\n\nDNI: 99999999",
        "Envío mis datos.",
    ),
    (
        "Datos corregidos.\n-----Original Message-----\nFrom: a@b.pe\nDNI: 99999999",
        "Datos corregidos.",
    ),
    (
        "Ok\n________________________________\nDe: Mesa de Partes\nEnviado: lunes, 23 de noviembre\nCE: 999999999",
        "Ok",
    ),
    (
        "Va mi celular 987654321\nDe: Mesa de Partes <mesadepartes@cepr.gob.pe>\n"
        "Enviado: lunes, 23 de noviembre de 2026 10:00\nPara: juan@gmail.com\nAsunto: Observación",
        "Va mi celular 987654321",
    ),
    ("Gracias\n\nEnviado desde mi iPhone\n\n> DNI: 9999", "Gracias"),
    ("Mis datos\n-- \nJuan\nCEO de nada", "Mis datos"),
    ("Hola\n> citado\n>> más citado\nfinal", "Hola\nfinal"),
]


@pytest.mark.parametrize(("text", "expected"), QUOTED)
def test_strip_quoted(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


def test_memo_headers_are_not_a_quoted_reply() -> None:
    text = "De: Juan Pérez\nPara: CEPR\nFecha: 23/11/2026\nAsunto: Renuncia\n\nCelular: 987654321"
    assert strip_quoted(text) == text


def test_quoted_text_does_not_pollute_fields(vocab: FieldVocabulary) -> None:
    text = "DNI: 12345678\n\nEl mar., 24 nov. 2026 a las 9:00, CEPR escribió:\n> Celular: 999999999"
    assert values(strip_quoted(text), vocab) == {"documento_identidad": "12345678"}


# --- refugee or asylum seeker -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Soy refugiado reconocido por el Estado peruano.", True),
        ("en mi condición de refugiada, solicito", True),
        ("ostento la calidad de refugiado desde 2020", True),
        ("Soy refugiada venezolana.", True),
        ("fui reconocida como refugiada en 2021", True),
        ("Carné de extranjería N° 001234567", True),
        ("CE: 001234567", True),
        ("Soy solicitante de refugio.", False),
        ("Solicitante: Juan Pérez", False),
        ("solicito el reconocimiento de la condición de refugiado", False),
        ("soy solicitante de la condición de refugiado", False),
        ("Carné de extranjería: en trámite", False),
        ("Hola, quiero actualizar mis datos.", False),
    ],
)
def test_detect_refugiado(text: str, expected: bool) -> None:
    assert detect_refugiado(text) is expected


# --- attachments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("Denuncia_Policial.pdf", "", True),
        ("DENUNCIA PNP perdida carne.pdf", "", True),
        ("constancia_comisaria.jpg", "", True),
        ("scan001.pdf", "POLICÍA NACIONAL DEL PERÚ\nComisaría de Lince\nConstancia", True),
        ("pasaporte.pdf", "República Bolivariana de Venezuela", False),
        (None, "", False),
    ],
)
def test_attachment_detection(
    vocab: FieldVocabulary, filename: str | None, content: str, expected: bool
) -> None:
    assert vocab.matches_attachment("denuncia_policial", filename, content) is expected


def test_only_attachment_fields_match_attachments(vocab: FieldVocabulary) -> None:
    assert vocab.matches_attachment("telefono", "denuncia.pdf") is False


# --- the vocabulary file ----------------------------------------------------------------------


def test_vocabulary_covers_the_public_field_ids(vocab: FieldVocabulary) -> None:
    assert set(vocab.ids()) == {
        "nombres_apellidos", "nacionalidad", "documento_identidad", "carne_extranjeria",
        "telefono", "correo", "sexo", "fecha_nacimiento", "motivo", "destino", "fecha_salida",
        "fecha_retorno", "denuncia_policial", "fecha_notificacion",
    }  # fmt: skip
    assert vocab.label("carne_extranjeria") == "Carné de extranjería"
    assert vocab.kind("denuncia_policial") == "attachment"
    assert vocab.label("desconocido") == "desconocido"


def test_labels_are_folded_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "fields.yaml"
    path.write_text(
        "fields:\n  telefono:\n    label: Teléfono\n    kind: phone\n"
        "    labels: ['TELÉFONO MÓVIL', 'Nº de WhatsApp']\n",
        encoding="utf-8",
    )
    vocab = load_field_vocabulary(path)
    assert values("telefono movil: 987654321\nwhatsapp: 912345678", vocab) == {
        "telefono": "+51987654321"
    }
    assert values("Teléfono Móvil N°: 912345678", vocab) == {"telefono": "+51912345678"}


BAD = [
    ("fields: [1, 2", ":1: YAML inválido"),
    ("- a\n- b\n", "se esperaba un mapa con la clave 'fields'"),
    ("fields: {}\n", "no hay campos definidos"),
    ("fields:\n  x:\n    label: X\n    kind: text\n    labels: [x]\nextra: 1\n", ":6: clave desconocida 'extra'"),
    ("fields:\n  x:\n    label: X\n    kind: numero\n    labels: [x]\n", ":4: tipo desconocido 'numero' en 'x'"),
    ("fields:\n  x:\n    kind: text\n    labels: [x]\n", "falta 'label' del campo 'x'"),
    ("fields:\n  x:\n    label: X\n    kind: text\n", "el campo 'x' necesita 'labels'"),
    ("fields:\n  x:\n    label: X\n    kind: text\n    labels: x\n", ":5: 'labels' de 'x' debe ser una lista"),
    ("fields:\n  x:\n    label: X\n    kind: text\n    labels: [x]\n    color: red\n", ":6: clave desconocida 'color'"),
    ("fields:\n  x: 3\n", ":2: el campo 'x' debe ser un mapa"),
    ("fields:\n  x:\n    label: X\n    kind: attachment\n", "necesita 'filename_keywords'"),
    ("fields:\n  x:\n    label: X\n    kind: text\n    labels: ['---']\n", ":5: etiqueta vacía"),
    (
        "fields:\n  x:\n    label: X\n    kind: text\n    labels:\n      - Teléfono\n      - telefono\n",
        ":7: etiqueta repetida 'telefono'",
    ),
    (
        "fields:\n  a:\n    label: A\n    kind: text\n    labels: [correo]\n"
        "  b:\n    label: B\n    kind: email\n    labels:\n      - e-mail\n      - 'Correo:'\n",
        ":11: etiqueta repetida 'Correo:'",
    ),
    (
        "fields:\n  a:\n    label: A\n    kind: text\n    labels: [x]\nignored_labels:\n  - fecha\n  - X\n",
        ":8: etiqueta repetida 'X'",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_vocabulary_is_rejected_with_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "fields.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_field_vocabulary(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_missing_vocabulary_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no existe"):
        load_field_vocabulary(tmp_path / "fields.yaml")


# --- less common shapes seen in real requests ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nombre: Pedro\nApellidos: Rivas León", "Pedro Rivas León"),
        ("Apellidos: Rivas León\nNombres: Pedro José", "Pedro José Rivas León"),
        ("Nombre completo: Ana Ruiz Soto\nNombres: Ana\nApellidos: Ruiz", "Ana Ruiz Soto"),
        ("Nombre: Juan Pérez (refugiado reconocido)", "Juan Pérez"),
        ("Saludos cordiales, Luis Fernando Castaño Ospina", "Luis Fernando Castaño Ospina"),
        ("Atentamente,\n\nROSA QUISPE MAMANI\nDNI: 12345678", "Rosa Quispe Mamani"),
    ],
)
def test_names(vocab: FieldVocabulary, text: str, expected: str) -> None:
    assert values(text, vocab)["nombres_apellidos"] == expected


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        (
            "FUNDAMENTOS DE LA APELACIÓN: No se valoró el riesgo.",
            "motivo",
            "No se valoró el riesgo.",
        ),
        ("Motivo de mi solicitud: cambio de número.", "motivo", "cambio de número."),
        ("Fundamentos del recurso\tNuevas pruebas.", "motivo", "Nuevas pruebas."),
        ("Fecha de salida del país: 01/12/2026", "fecha_salida", "2026-12-01"),
        ("Número de documento (pasaporte): 123456789", "documento_identidad", "123456789"),
        ("cel (+51) 963 852 741", "telefono", "+51963852741"),
    ],
)
def test_qualified_labels(vocab: FieldVocabulary, text: str, field: str, expected: str) -> None:
    assert values(text, vocab) == {field: expected}


@pytest.mark.parametrize(
    "text",
    [
        "Teléfono de mi esposa: 987654321",
        "Fecha de nacimiento de mi hijo: 01/01/2020",
        "Nombre del padre: José Pérez",
    ],
)
def test_labels_about_someone_else_are_not_read(vocab: FieldVocabulary, text: str) -> None:
    assert values(text, vocab) == {}


def test_pdf_form_field_names_with_number_markers(vocab: FieldVocabulary) -> None:
    form = {"N° de documento": "N008812345", "Número de contacto": "+51 999 888 777"}
    found = extract_pdf_form_fields(form, vocab, "formulario:x.pdf")
    assert {k: v.value for k, v in found.items()} == {
        "documento_identidad": "N008812345",
        "telefono": "+51999888777",
    }


@pytest.mark.parametrize(
    "footer",
    ["Enviado desde Outlook", "Enviado desde Yahoo Mail para Android", "Sent from my iPhone"],
)
def test_mobile_footers_are_cut(footer: str) -> None:
    assert strip_quoted(f"Celular: 987654321\n\n{footer}\n\nDNI: 999") == "Celular: 987654321"


def test_text_without_labels_yields_nothing(vocab: FieldVocabulary) -> None:
    text = "Buenas tardes, quisiera saber el estado de mi trámite. Muchas gracias por su atención."
    assert extract_fields(text, vocab) == {}
