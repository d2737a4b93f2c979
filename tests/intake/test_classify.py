"""Subject classification against the catalogue: prefixes, accents, misspellings, ties, topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.intake.catalogue import load_catalogue
from mailflow.intake.classify import Classifier
from mailflow.textnorm import fold, strip_reply_prefixes, tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_catalogue(ROOT / "rules"), threshold=0.80, tie_margin=0.04)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Actualización de datos", "actualizacion_datos"),
        ("ACTUALIZACION DE DATOS", "actualizacion_datos"),
        ("actualisacion de datos", "actualizacion_datos"),
        ("RE: RV: Actualización de datos - Juan Pérez 12345678", "actualizacion_datos"),
        ("Actualizar mis datos", "actualizacion_datos"),
        ("Cambio de clave y contraseña", "cambio_clave"),
        ("Fwd: cambio de contraseña", "cambio_clave"),
        ("olvidé mi clave", "cambio_clave"),
        ("Recurso de Reconsideración", "reconsideracion"),
        ("RES: recurso de reconsideracion exp 2024-123", "reconsideracion"),
        ("Reconsiderasion", "reconsideracion"),
        ("Recurso de Apelación", "apelacion"),
        ("ENC: FW: apelasion", "apelacion"),
        ("Renuncia", "renuncia"),
        ("Renuncia a la solicitud de refugio - Ana Gil", "renuncia"),
        ("Prórroga de residencia", "prorroga_residencia"),
        ("prorroga de recidencia", "prorroga_residencia"),
        ("Renovación de carné de extranjería", "prorroga_residencia"),
        ("Duplicado de carné de extranjería", "duplicado_carne_extranjeria"),
        ("DUPLICADO DE CARNET DE EXTRANJERIA", "duplicado_carne_extranjeria"),
        ("Pérdida de carné", "duplicado_carne_extranjeria"),
        ("Autorización de Viaje", "autorizacion_viaje"),
        ("autorisacion de viaje a Colombia", "autorizacion_viaje"),
        ("Solicito permiso de viaje", "autorizacion_viaje"),
        ("Carné de solicitante", "carne_solicitante"),
        ("RE: renovacion de carnet de solicitante", "carne_solicitante"),
        ("=?utf-8?q?no-decoded?= Actualización de datos", "actualizacion_datos"),
        ("[EXTERNO] Re: Autorización de viaje", "autorizacion_viaje"),
    ],
)
def test_subject_names_the_procedure(classifier: Classifier, subject: str, expected: str) -> None:
    result = classifier.classify(subject)
    assert result.tramite == expected, result.reasons
    assert result.confidence >= 0.80
    assert result.source == "asunto"


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Reunificación familiar", "reunificacion_familiar"),
        ("Consulta sobre mi apelación", "consulta"),
        ("Estado de mi trámite", "consulta"),
        ("Solicitud de refugio", "solicitud_refugio"),
        ("Cita para entrevista", "cita_entrevista"),
        ("Permiso de trabajo", "autorizacion_trabajo"),
        ("Carta para banco", "carta_bancaria"),
    ],
)
def test_off_catalogue_topics_go_to_staff(classifier: Classifier, subject: str, topic: str) -> None:
    result = classifier.classify(subject)
    assert result.tramite is None
    assert result.topic == topic
    assert "fuera del catálogo" in result.reasons[0]


@pytest.mark.parametrize(
    "subject",
    ["Prórroga de residencia y duplicado de carné", "Reconsideración y apelación"],
)
def test_two_procedures_tie_and_go_to_staff(classifier: Classifier, subject: str) -> None:
    result = classifier.classify(subject)
    assert result.tramite is None
    assert "más de un trámite" in result.reasons[0]


@pytest.mark.parametrize("subject", ["", "Solicitud", "Urgente", "Hola buenos días", "recurso"])
def test_vague_subject_without_body_is_unclassified(classifier: Classifier, subject: str) -> None:
    result = classifier.classify(subject, "")
    assert result.tramite is None
    assert result.topic is None
    assert result.reasons


def test_vague_subject_falls_back_to_body(classifier: Classifier) -> None:
    body = "Buenos días, deseo actualizar mis datos porque cambié de número."
    result = classifier.classify("Solicitud", body)
    assert (result.tramite, result.source) == ("actualizacion_datos", "cuerpo")
    assert result.confidence >= 0.80


def test_body_naming_two_procedures_is_not_guessed(classifier: Classifier) -> None:
    body = "Quiero la prórroga de residencia y también un duplicado del carné"
    result = classifier.classify("", body)
    assert result.tramite is None


def test_short_words_need_an_exact_match(classifier: Classifier) -> None:
    assert classifier.classify("cito").topic is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("RE: RV: Fwd: Hola", "Hola"),
        ("Re[2]: Hola", "Hola"),
        ("AW: WG: Hola", "Hola"),
        ("[EXTERNO] RES: Hola", "Hola"),
        ("Respuesta sin prefijo", "Respuesta sin prefijo"),
        ("Renuncia: motivos personales", "Renuncia: motivos personales"),
    ],
)
def test_reply_prefixes_are_stripped(raw: str, clean: str) -> None:
    assert strip_reply_prefixes(raw) == clean


def test_folding_and_tokens() -> None:
    assert fold("Prórroga de RESIDENCIA, Señor") == "prorroga de residencia senor"
    assert tokens("Duplicado de carnet N° 001234567") == ("duplicado", "carne")


def test_huge_subject_is_read_only_so_far(classifier: Classifier) -> None:
    assert classifier.classify("Actualización de datos " + "bla " * 25_000).tramite == (
        "actualizacion_datos"
    )
    # what lies past the window is not read at all (bounded work on hostile subjects)
    assert classifier.classify("bla " * 100 + "Actualización de datos").tramite is None
