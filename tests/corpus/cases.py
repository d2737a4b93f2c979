"""The generated half of the corpus: requests for every procedure, each with its expected decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.corpus.compose import LIMA, Case, Req, case_of


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A fixed receipt time in 2026, Lima time."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LIMA)


REFUGIADO = (
    "Soy refugiado reconocido por la Comisión.",
    "Tengo la condición de refugiada reconocida desde el 2021.",
    "Cuento con la calidad de refugiado otorgada por la CEPR.",
)
SOLICITANTE = (
    "Soy solicitante de refugio, mi solicitud sigue en evaluación.",
    "Soy solicitante de la condición de refugiado y aún no tengo carné.",
    "Estoy en calidad de solicitante de refugio desde el año pasado.",
)
INTROS: dict[str, tuple[str, ...]] = {
    "actualizacion_datos": (
        "Señores CEPR:\nMe dirijo a ustedes para solicitar la actualización de mis datos, ya que cambié de número de teléfono.",
        "Buenas tardes, quisiera actualizar mis datos porque me mudé y tengo nuevo celular.",
        "Estimados, por favor actualizar mi información en el sistema, les dejo mis datos.",
        "hola buen dia necesito actualizar el numero de telefono q tengo registrado",
    ),
    "cambio_clave": (
        "Buenos días, no puedo ingresar a la plataforma virtual, solicito el cambio de clave y contraseña.",
        "Hola, olvidé mi contraseña de la plataforma y necesito una nueva.",
        "Estimados señores:\nSolicito se me asigne una nueva clave de acceso pues la anterior fue bloqueada.",
    ),
    "reconsideracion": (
        "Señores de la Comisión Especial para los Refugiados:\nPor medio del presente interpongo recurso de reconsideración contra la resolución que declaró infundada mi solicitud.",
        "Buenas tardes, adjunto mi recurso de reconsideración firmado digitalmente contra la resolución que me fue notificada.",
        "Estimados:\nPresento recurso de reconsideración y ofrezco nueva prueba documental.",
    ),
    "apelacion": (
        "Señores:\nInterpongo recurso de apelación contra la resolución que desestimó mi recurso de reconsideración.",
        "Buenos días, envío mi apelación firmada para que sea elevada al superior jerárquico.",
        "Estimada Comisión:\nPor medio de la presente apelo la decisión notificada a mi correo.",
    ),
    "renuncia": (
        "Señores CEPR:\nPresento mi renuncia voluntaria porque regreso a mi país.",
        "Buenas tardes, deseo renunciar a mi trámite de refugio, adjunto la carta firmada.",
        "Por medio de la presente comunico mi decisión de renunciar de forma libre y voluntaria.",
    ),
    "prorroga_residencia": (
        "Señores:\nSolicito la prórroga de mi residencia como refugiado, mi carné vence el próximo mes.",
        "Buenas, necesito la prorroga de residencia, mi carnet esta por vencer.",
        "Estimados señores de la Comisión:\nMe dirijo a ustedes para solicitar la prórroga de residencia y el oficio a Migraciones.",
    ),
    "duplicado_carne_extranjeria": (
        "Señores:\nSolicito el duplicado de mi carné de extranjería pues me lo robaron la semana pasada. Adjunto la denuncia.",
        "Buenas noches, perdí mi carné y necesito el duplicado, les mando la denuncia policial.",
        "Estimados:\nMediante el presente solicito duplicado por pérdida de mi carné de extranjería.",
    ),
    "autorizacion_viaje": (
        "Señores CEPR:\nSolicito autorización de viaje al exterior por motivos familiares.",
        "Buenas tardes, necesito permiso para viajar, adjunto mi solicitud firmada.",
        "Estimados, por medio del presente solicito la autorización de viaje y el oficio a Migraciones.",
    ),
}
MOTIVOS: dict[str, tuple[str, ...]] = {
    "reconsideracion": (
        "La resolución no valoró la persecución que sufrí por motivos políticos; adjunto nuevas pruebas.",
        "No se consideró mi declaración completa ni los documentos que presenté en la entrevista.",
    ),
    "apelacion": (
        "La resolución se basa en una interpretación errónea de los hechos y de la Convención de 1951.",
        "No estoy de acuerdo con la decisión porque no se evaluó el riesgo que corro en mi país.",
    ),
    "renuncia": (
        "Regreso a mi país de origen por reunirme con mi familia.",
        "Obtuve la residencia por otra vía y ya no necesito la protección.",
    ),
    "autorizacion_viaje": (
        "Visitar a mi madre que se encuentra enferma.",
        "Participar en un congreso académico.",
        "Vacaciones familiares.",
    ),
}
VIAJES = (
    ("Bogotá, Colombia", "10/05/2026", "2026-05-10", "24/05/2026", "2026-05-24"),
    ("Santiago de Chile", "2026-06-15", "2026-06-15", "2026-06-30", "2026-06-30"),
    ("Quito, Ecuador", "3 de agosto de 2026", "2026-08-03", "17 de agosto de 2026", "2026-08-17"),
    ("Buenos Aires, Argentina", "20-07-2026", "2026-07-20", "05-08-2026", "2026-08-05"),
)
SUBJECTS: dict[str, tuple[str, ...]] = {
    "actualizacion_datos": (
        "Actualización de datos",
        "ACTUALIZACION DE DATOS",
        "actualizacion de datos - Ana Rodriguez",
        "RE: Actualización de datos",
        "Actualisacion de datos",
        "actualización de datos personales",
        "[EXTERNO] Actualización de datos 001234567",
        "Fwd: actualizacion de dato",
    ),
    "cambio_clave": (
        "Cambio de clave y contraseña",
        "cambio de clave",
        "CAMBIO DE CONTRASEÑA",
        "RV: Cambio de clave y contrasena",
        "olvide mi contraseña",
        "Cambio de clabe y contraseña",
    ),
    "reconsideracion": (
        "Recurso de Reconsideración",
        "RECURSO DE RECONSIDERACION",
        "recurso de reconsideracion - exp 2025-1234",
        "RES: Recurso de Reconsideración",
        "Reconsideracion",
        "Recurso de reconcideración",
    ),
    "apelacion": (
        "Recurso de Apelación",
        "RECURSO DE APELACION",
        "apelacion",
        "Recurso de apelasion",
        "FW: Recurso de Apelación - Carlos Mendoza",
        "Recurso de Apelacion exp. 4521-2025",
    ),
    "renuncia": (
        "Renuncia",
        "RENUNCIA",
        "Renuncia a la condición de refugiado",
        "renuncia voluntaria",
        "RE: Renuncia",
        "Renuncia a la solicitud de refugio - Luis Castaño",
    ),
    "prorroga_residencia": (
        "Prórroga de residencia",
        "PRORROGA DE RESIDENCIA",
        "prorroga de recidencia",
        "Prorroga de residencia 002345118",
        "ENC: Prórroga de residencia",
        "prórroga residencia",
    ),
    "duplicado_carne_extranjeria": (
        "Duplicado de carné de extranjería",
        "DUPLICADO DE CARNE DE EXTRANJERIA",
        "duplicado de carnet",
        "Duplicado de carnet de extranjeria - robo",
        "RV: duplicado de carné",
        "duplicado carne extrangeria",
    ),
    "autorizacion_viaje": (
        "Autorización de Viaje",
        "AUTORIZACION DE VIAJE",
        "autorisacion de viaje",
        "Autorización de viaje - Oriana Rivas",
        "Re: Autorizacion de viaje",
        "permiso de viaje",
    ),
}


def _req(tramite: str, n: int, who: int, style: str, month: int, day: int, **kw: Any) -> Req:
    subjects = SUBJECTS[tramite]
    intros = INTROS[tramite]
    intro = kw.pop("intro", intros[n % len(intros)])
    status = kw.get("status")
    if status == "refugiado":
        intro += " " + REFUGIADO[n % len(REFUGIADO)]
    elif status == "solicitante":
        intro += " " + SOLICITANTE[n % len(SOLICITANTE)]
    motivos = MOTIVOS.get(tramite, ("",))
    kw.setdefault("motivo", motivos[n % len(motivos)])
    if tramite == "autorizacion_viaje":
        kw.setdefault("viaje", VIAJES[n % len(VIAJES)])
    kw["omit"] = frozenset(kw.get("omit", ()))
    return Req(
        name=f"{tramite}-{n:02d}",
        tramite=tramite,
        who=who,
        style=style,
        subject=kw.pop("subject", subjects[n % len(subjects)]),
        when=at(month, day, 9 + n % 8, (n * 7) % 60),
        intro=intro,
        **kw,
    )


ON_TIME = ("09/03/2026", "2026-03-09")  # notified 6 días hábiles before 17 March 2026
LATE = ("12 de enero de 2026", "2026-01-12")  # far more than 15 días hábiles before March

REQS: list[Req] = [
    # actualizacion_datos
    _req("actualizacion_datos", 1, 0, "letter", 3, 2, status="solicitante"),
    _req("actualizacion_datos", 2, 1, "note", 3, 3, status="refugiado"),
    _req("actualizacion_datos", 3, 2, "form", 3, 4, status="refugiado", omit={"carne_extranjeria"}),
    _req("actualizacion_datos", 4, 3, "html_table", 3, 5, status="solicitante"),
    _req("actualizacion_datos", 5, 4, "html_div", 3, 6, omit={"telefono"}),
    _req("actualizacion_datos", 6, 5, "dash", 3, 9, omit={"nacionalidad", "documento_identidad"}),
    _req("actualizacion_datos", 7, 6, "letter", 3, 10, invalid={"telefono": "98765"}),
    _req("actualizacion_datos", 8, 7, "form", 3, 11, invalid={"carne_extranjeria": "12345678"}),
    _req(
        "actualizacion_datos",
        9,
        8,
        "letter",
        3,
        12,
        status="solicitante",
        charset="iso-8859-1",
        transfer="8bit",
        subject="Actualización de datos",
        subject_encoding="Q",
        subject_charset="iso-8859-1",
    ),
    _req(
        "actualizacion_datos",
        10,
        9,
        "alt",
        3,
        13,
        status="refugiado",
        charset="windows-1252",
        subject="Actualización de datos – urgente",
        subject_encoding="B",
        subject_charset="windows-1252",
    ),
    _req(
        "actualizacion_datos",
        11,
        10,
        "note",
        3,
        16,
        charset="iso-8859-1",
        declared_charset="utf-8",
        transfer="8bit",
    ),
    _req(
        "actualizacion_datos",
        12,
        11,
        "letter",
        3,
        17,
        subject="",
        status="solicitante",
        intro="Buenas tardes, deseo actualizar mis datos de contacto.",
    ),
    _req(
        "actualizacion_datos",
        13,
        0,
        "letter",
        3,
        18,
        subject="Solicitud",
        status="refugiado",
        intro="Señores, por medio de la presente solicito la actualización de mis datos.",
    ),
    _req("actualizacion_datos", 14, 1, "letter", 3, 19, data_in="pdf", status="solicitante"),
    # cambio_clave
    _req("cambio_clave", 1, 2, "letter", 4, 6, correo_written=True),
    _req("cambio_clave", 2, 3, "note", 4, 7),
    _req("cambio_clave", 3, 4, "form", 4, 8, omit={"documento_identidad"}),
    _req("cambio_clave", 4, 5, "html_table", 4, 9, correo_written=True),
    _req("cambio_clave", 5, 6, "html_div", 4, 10),
    _req("cambio_clave", 6, 7, "dash", 4, 13, omit={"telefono", "documento_identidad"}),
    _req(
        "cambio_clave",
        7,
        8,
        "letter",
        4,
        14,
        subject="Cambio de clave y contraseña",
        subject_encoding="Q",
    ),
    _req("cambio_clave", 8, 9, "alt", 4, 15, transfer="base64", correo_written=True),
    _req("cambio_clave", 9, 10, "note", 4, 16, invalid={"telefono": "4512"}),
    _req("cambio_clave", 10, 11, "letter", 4, 17, omit={"nombres_apellidos"}),
    # reconsideracion
    _req("reconsideracion", 1, 0, "letter", 3, 17, pdf="valid", notificacion=ON_TIME),
    _req("reconsideracion", 2, 1, "letter", 3, 17, pdf="valid", notificacion=LATE, late=True),
    _req("reconsideracion", 3, 2, "form", 3, 17, pdf="untrusted"),
    _req("reconsideracion", 4, 3, "html_table", 3, 17, pdf="invalid"),
    _req("reconsideracion", 5, 4, "note", 3, 18, pdf="unsigned"),
    _req("reconsideracion", 6, 5, "dash", 3, 18),
    _req("reconsideracion", 7, 6, "letter", 3, 18, pdf="valid", omit={"motivo"}),
    _req("reconsideracion", 8, 7, "letter", 3, 19, pdf="valid", data_in="pdf", correo_written=True),
    _req("reconsideracion", 9, 8, "html_div", 3, 19, omit={"telefono"}),
    _req("reconsideracion", 10, 9, "alt", 3, 20, pdf="valid", subject_encoding="B"),
    # apelacion
    _req("apelacion", 1, 7, "letter", 4, 20, pdf="valid", correo_written=True),
    _req("apelacion", 2, 6, "form", 4, 20, pdf="valid", notificacion=("15/04/2026", "2026-04-15")),
    _req(
        "apelacion",
        3,
        5,
        "letter",
        4,
        21,
        pdf="valid",
        notificacion=("2 de febrero de 2026", "2026-02-02"),
        late=True,
    ),
    _req("apelacion", 4, 4, "html_table", 4, 21, pdf="untrusted"),
    _req("apelacion", 5, 3, "note", 4, 22, pdf="invalid"),
    _req("apelacion", 6, 2, "dash", 4, 22, pdf="unsigned"),
    _req("apelacion", 7, 1, "letter", 4, 23),
    _req("apelacion", 8, 0, "html_div", 4, 23, pdf="valid", omit={"documento_identidad"}),
    _req("apelacion", 9, 11, "letter", 4, 24, pdf="valid", data_in="pdf"),
    _req("apelacion", 10, 10, "alt", 4, 24, omit={"motivo", "telefono"}),
    # renuncia
    _req("renuncia", 1, 3, "letter", 5, 4, pdf="valid", status="refugiado"),
    _req("renuncia", 2, 2, "note", 5, 5, pdf="valid", status="solicitante"),
    _req(
        "renuncia", 3, 1, "form", 5, 6, pdf="valid", status="refugiado", omit={"carne_extranjeria"}
    ),
    _req("renuncia", 4, 0, "html_table", 5, 7, pdf="untrusted", status="solicitante"),
    _req("renuncia", 5, 9, "letter", 5, 8, pdf="invalid"),
    _req("renuncia", 6, 8, "dash", 5, 11, status="solicitante"),
    _req("renuncia", 7, 7, "html_div", 5, 12, pdf="unsigned", status="refugiado"),
    _req("renuncia", 8, 6, "letter", 5, 13, pdf="valid", omit={"motivo", "nacionalidad"}),
    _req("renuncia", 9, 5, "letter", 5, 14, pdf="valid", data_in="pdf", status="refugiado"),
    _req(
        "renuncia",
        10,
        4,
        "alt",
        5,
        15,
        pdf="valid",
        charset="windows-1252",
        subject_encoding="Q",
        subject="Renuncia a la condición de refugiado",
        subject_charset="iso-8859-1",
        status="refugiado",
    ),
    # prorroga_residencia
    _req("prorroga_residencia", 1, 0, "form", 6, 1),
    _req("prorroga_residencia", 2, 1, "letter", 6, 2),
    _req("prorroga_residencia", 3, 2, "note", 6, 3, omit={"sexo"}),
    _req(
        "prorroga_residencia", 4, 3, "html_table", 6, 4, invalid={"fecha_nacimiento": "31/02/2020"}
    ),
    _req(
        "prorroga_residencia",
        5,
        4,
        "html_div",
        6,
        5,
        omit={"fecha_nacimiento", "carne_extranjeria"},
    ),
    _req("prorroga_residencia", 6, 5, "letter", 6, 9, data_in="form"),
    _req("prorroga_residencia", 7, 6, "dash", 6, 10, invalid={"carne_extranjeria": "23456789"}),
    _req("prorroga_residencia", 8, 7, "letter", 6, 11, data_in="pdf"),
    _req(
        "prorroga_residencia",
        9,
        8,
        "alt",
        6,
        12,
        charset="iso-8859-1",
        transfer="quoted-printable",
        subject="Prórroga de residencia",
        subject_encoding="Q",
        subject_charset="iso-8859-1",
    ),
    _req(
        "prorroga_residencia",
        10,
        9,
        "form",
        6,
        15,
        omit={"nacionalidad", "telefono", "documento_identidad"},
    ),
    # duplicado_carne_extranjeria
    _req("duplicado_carne_extranjeria", 1, 10, "letter", 7, 1, denuncia="denuncia_policial.pdf"),
    _req("duplicado_carne_extranjeria", 2, 11, "note", 7, 2, denuncia="DENUNCIA.jpg"),
    _req("duplicado_carne_extranjeria", 3, 0, "form", 7, 3),
    _req("duplicado_carne_extranjeria", 4, 1, "html_table", 7, 6, denuncia="Denuncia PNP robo.pdf"),
    _req(
        "duplicado_carne_extranjeria",
        5,
        2,
        "html_div",
        7,
        7,
        denuncia="denuncia.pdf",
        omit={"sexo"},
    ),
    _req("duplicado_carne_extranjeria", 6, 3, "dash", 7, 8, omit={"telefono"}),
    _req(
        "duplicado_carne_extranjeria",
        7,
        4,
        "letter",
        7,
        9,
        denuncia="denuncia_perdida.jpg",
        invalid={"fecha_nacimiento": "30/02/1990"},
    ),
    _req(
        "duplicado_carne_extranjeria",
        8,
        5,
        "alt",
        7,
        10,
        denuncia="denuncia policial.pdf",
        data_in="form",
    ),
    _req(
        "duplicado_carne_extranjeria",
        9,
        6,
        "letter",
        7,
        13,
        denuncia="denuncia_policial.pdf",
        charset="windows-1252",
        transfer="8bit",
    ),
    _req(
        "duplicado_carne_extranjeria",
        10,
        7,
        "note",
        7,
        14,
        denuncia="Denuncia.pdf",
        subject="duplicado de carnet",
    ),
    # autorizacion_viaje
    _req("autorizacion_viaje", 1, 9, "letter", 4, 1, pdf="valid"),
    _req("autorizacion_viaje", 2, 8, "form", 4, 6, pdf="valid"),
    _req("autorizacion_viaje", 3, 7, "html_table", 4, 7, pdf="untrusted"),
    _req("autorizacion_viaje", 4, 6, "note", 4, 8, pdf="invalid"),
    _req("autorizacion_viaje", 5, 5, "dash", 4, 9, pdf="unsigned"),
    _req("autorizacion_viaje", 6, 4, "letter", 4, 10),
    _req(
        "autorizacion_viaje",
        7,
        3,
        "html_div",
        4,
        13,
        pdf="valid",
        omit={"destino", "fecha_retorno"},
    ),
    _req("autorizacion_viaje", 8, 2, "letter", 4, 14, pdf="valid", omit={"carne_extranjeria"}),
    _req("autorizacion_viaje", 9, 1, "alt", 4, 15, pdf="valid", data_in="pdf"),
    _req(
        "autorizacion_viaje",
        10,
        0,
        "letter",
        4,
        16,
        pdf="valid",
        invalid={"fecha_salida": "31/04/2026"},
    ),
    # second round: other writers, layouts and traps
    _req("actualizacion_datos", 15, 3, "dash", 3, 20, status="refugiado", transfer="base64"),
    _req("actualizacion_datos", 16, 7, "html_table", 3, 23, omit={"nombres_apellidos"}),
    _req("cambio_clave", 11, 0, "html_table", 4, 20, omit={"correo"}, anonymous_sender=True),
    _req("cambio_clave", 12, 1, "form", 4, 21, data_in="pdf", correo_written=True),
    _req(
        "reconsideracion",
        11,
        10,
        "note",
        3,
        23,
        pdf="valid",
        notificacion=("13/03/2026", "2026-03-13"),
    ),
    _req(
        "reconsideracion", 12, 11, "html_table", 3, 24, pdf="unsigned", omit={"documento_identidad"}
    ),
    _req(
        "apelacion", 11, 9, "form", 4, 27, pdf="valid", subject="RE: RV: [Ext] recurso de apelacion"
    ),
    _req("apelacion", 12, 8, "dash", 4, 28, pdf="unsigned", invalid={"telefono": "12345"}),
    _req(
        "renuncia", 11, 3, "dash", 5, 18, pdf="valid", status="solicitante", subject="Desistimiento"
    ),
    _req("renuncia", 12, 2, "html_div", 5, 19, invalid={"carne_extranjeria": "1234567"}),
    _req(
        "prorroga_residencia", 11, 10, "note", 6, 16, subject="renovacion de carnet de extranjeria"
    ),
    _req(
        "prorroga_residencia",
        12,
        11,
        "letter",
        6,
        17,
        transfer="base64",
        omit={"sexo", "nacionalidad"},
    ),
    _req(
        "duplicado_carne_extranjeria",
        11,
        8,
        "html_table",
        7,
        15,
        denuncia="denuncia_policial.PDF",
        omit={"carne_extranjeria"},
    ),
    _req(
        "duplicado_carne_extranjeria",
        12,
        9,
        "form",
        7,
        16,
        subject="Robo de carné de extranjería",
        denuncia="denuncia.jpg",
    ),
    _req("autorizacion_viaje", 11, 11, "form", 4, 20, pdf="valid", subject="PERMISO PARA VIAJAR"),
    _req(
        "cambio_clave",
        13,
        6,
        "letter",
        4,
        22,
        subject="Restablecer contraseña",
        charset="iso-8859-1",
        declared_charset="utf-8",
        transfer="quoted-printable",
        correo_written=True,
    ),
    _req(
        "prorroga_residencia", 13, 5, "html_table", 6, 18, subject="RV: RE: PRÓRROGA DE RESIDENCIA"
    ),
    _req("autorizacion_viaje", 12, 10, "note", 4, 21, pdf="untrusted", omit={"motivo"}),
]

CASES: list[Case] = [case_of(r) for r in REQS]
