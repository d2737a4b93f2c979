"""Issuance policy: the closed vocabulary in rules/*.yaml, its start-up validation, the
registry status words, the automatic conditions, travel alerts, the authority block and the
Migraciones-address refusal."""

from __future__ import annotations

import datetime as dt
import shutil
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailflow.cli import cli
from mailflow.clock.dias_habiles import Calendario
from mailflow.config import Institution, MigracionesSettings, Settings, load_settings
from mailflow.documents.channel import migraciones_refusal
from mailflow.documents.issuance import CONDITIONS, Facts, assess, travel_alerts
from mailflow.documents.issuing import issue_document
from mailflow.documents.pki import create_demo_pki
from mailflow.documents.signing import DocumentSigner
from mailflow.errors import DefinitionError
from mailflow.intake import catalogue as catalogue_module
from mailflow.intake.catalogue import load_catalogue
from mailflow.intake.pdftext import read_pdf
from mailflow.ops.runcmd import run
from mailflow.registry.status import RegistryStatus, status_code
from mailflow.store.db import Database
from mailflow.store.models import Applicant
from tests.support.documents_helpers import NOW, add_case, case_data, make_settings

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SETTINGS = load_settings(ROOT / "config.yaml", env={})
CATALOGUE = load_catalogue(RULES)
CAL = Calendario.from_settings(SETTINGS.calendar)
RECEIVED = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # Monday 10:00 in Lima
FIELDS = {
    "nombres_apellidos": "Ana Gómez Ruiz",
    "carne_extranjeria": "000123456",
    "documento_identidad": "40000001",
    "nacionalidad": "venezolana",
}


def _person(**changes: str) -> Applicant:
    values = {
        "full_name": "Ana Gómez Ruiz",
        "carne_extranjeria": "000123456",
        "document_number": "40000001",
        "email": "ana@example.org",
        "status": "Refugiada reconocida",
        **changes,
    }
    return Applicant(**values)


def _facts(tramite: str = "prorroga_residencia", **changes: typing.Any) -> Facts:
    base: dict[str, typing.Any] = {
        "tramite": CATALOGUE.get(tramite),
        "fields": FIELDS,
        "sender": "Ana@Example.org",
        "complete": True,
        "signature_status": "absent",
        "signer": None,
        "person": _person(),
        "received": RECEIVED,
    }
    base.update(changes)
    return Facts(**base)


# -- registry status vocabulary -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("Refugiado reconocido", RegistryStatus.REFUGIADO_RECONOCIDO),
        ("REFUGIADA RECONOCIDA", RegistryStatus.REFUGIADO_RECONOCIDO),
        ("refugiado", RegistryStatus.REFUGIADO_RECONOCIDO),
        ("RR", RegistryStatus.REFUGIADO_RECONOCIDO),
        ("No reconocido", RegistryStatus.DENEGADO),
        ("Solicitante de refugio", RegistryStatus.SOLICITANTE),
        ("Cesada", RegistryStatus.CESADO),
        ("refugiado_reconocido", RegistryStatus.REFUGIADO_RECONOCIDO),
        ("", None),
        ("pendiente de cita", None),
    ],
)
def test_spreadsheet_words_map_to_the_closed_status_vocabulary(
    cell: str, code: RegistryStatus | None
) -> None:
    assert status_code(cell) == code


# -- policy vocabulary and start-up validation -----------------------------------------------


def test_defaults_prorroga_and_duplicado_automatic_travel_by_staff() -> None:
    assert CATALOGUE.get("prorroga_residencia").issue == "automatic"
    assert CATALOGUE.get("duplicado_carne_extranjeria").issue == "automatic"
    travel = CATALOGUE.get("autorizacion_viaje")
    assert travel.issue == "staff_approval"
    assert set(travel.alerts) == {
        "salida_pasada", "salida_antes_del_plazo", "destino_pais_de_nacionalidad",
    }  # fmt: skip
    assert all(t.issue == "staff_approval" for t in CATALOGUE if t.product != "oficio")


def test_condition_names_in_yaml_and_code_are_the_same_set() -> None:
    assert set(typing.get_args(catalogue_module.Condition)) == set(CONDITIONS)
    assert set(catalogue_module.AUTOMATIC_FLOOR) <= set(CONDITIONS)


def _rules_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return rules


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("name", "old", "new", "needle", "message"),
    [
        ("prorroga_residencia", "issue: automatic", "issue: automatico", "issue:",
         "issue"),
        ("prorroga_residencia", "  - remitente_registrado\n", "", "conditions:",
         "faltan: remitente_registrado"),
        ("prorroga_residencia", "  - documento_coincide\n", "  - documento_parecido\n",
         "documento_parecido", "conditions.3"),
        ("autorizacion_viaje", "issue: staff_approval", "issue: automatic", "issue:",
         "autorización de viaje"),
        ("renuncia", "machine: general", "machine: general\nissue: automatic", "issue:",
         "producto es un oficio"),
        ("autorizacion_viaje", "alerts: [salida_pasada,", "alerts: [salida_rapida,", "alerts:",
         "alerts.0"),
    ],
)  # fmt: skip
def test_start_up_rejects_bad_policy_with_file_and_line(
    tmp_path: Path, name: str, old: str, new: str, needle: str, message: str
) -> None:
    rules = _rules_with(tmp_path, name, old, new)
    path = rules / f"{name}.yaml"
    with pytest.raises(DefinitionError) as caught:
        load_catalogue(rules)
    text = str(caught.value)
    assert f"{path}:{_line_of(path, needle)}" in text, text
    assert message in text


# -- conditions --------------------------------------------------------------------------------


def test_all_conditions_hold_means_automatic() -> None:
    result = assess(_facts(), CAL)
    assert result.automatic and result.reasons == ()
    assert "Emisión automática" in result.summary()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"complete": False}, "faltan requisitos"),
        ({"person": None}, "no figura en el registro"),
        ({"person": _person(status="Solicitante")}, "Solicitante de refugio"),
        ({"person": _person(status="")}, "sin estado"),
        ({"person": _person(carne_extranjeria="000999999", document_number="1")},
         "no coincide con el del registro"),
        ({"sender": "otra@example.net"}, "no es el registrado"),
        ({"person": _person(email=None)}, "no es el registrado"),
    ],
)  # fmt: skip
def test_each_failed_condition_sends_the_case_to_staff_with_its_reason(
    changes: dict[str, typing.Any], reason: str
) -> None:
    result = assess(_facts(**changes), CAL)
    assert not result.automatic
    assert any(reason in r for r in result.reasons), result.reasons


def test_signature_must_be_valid_and_the_applicants_where_required() -> None:
    travel = CATALOGUE.get("autorizacion_viaje")
    rule = CONDITIONS["firma_valida"]
    ok = _facts("autorizacion_viaje", signature_status="valid", signer="GÓMEZ RUIZ ANA")
    assert rule.check(ok) is None
    other = _facts("autorizacion_viaje", signature_status="valid", signer="Pedro Castro Luna")
    assert "no del solicitante" in (rule.check(other) or "")
    untrusted = _facts("autorizacion_viaje", signature_status="untrusted", signer="Ana Gómez Ruiz")
    assert "no es de una entidad de certificación de confianza" in (rule.check(untrusted) or "")
    for status in ("absent", "unsigned", "invalid"):  # in words, never the raw status
        why = rule.check(_facts("autorizacion_viaje", signature_status=status)) or ""
        assert why and status not in why
    assert travel.signature_required
    assert rule.check(_facts()) is None  # prórroga: no signature required


def test_staff_approval_policy_is_never_automatic() -> None:
    facts = _facts("autorizacion_viaje", signature_status="valid", signer="Ana Gómez Ruiz")
    assert not assess(facts, CAL).automatic


# -- travel alerts -------------------------------------------------------------------------


def _travel(**fields: str) -> tuple[str, ...]:
    values = {**FIELDS, "destino": "Chile", "fecha_salida": "2027-01-20", **fields}
    return travel_alerts(CATALOGUE.get("autorizacion_viaje"), values, RECEIVED, CAL)


def test_travel_alerts() -> None:
    assert _travel() == ()
    assert "ya pasó" in _travel(fecha_salida="2026-11-20")[0]
    # 5 días hábiles from Monday 23 Nov 2026 → due Monday 30 Nov; Friday 27 is too early
    early = _travel(fecha_salida="2026-11-27")
    assert len(early) == 1 and "anterior al plazo de 5 días hábiles" in early[0]
    home = _travel(destino="Caracas, Venezuela")
    assert len(home) == 1 and "riesgo de cesación" in home[0]
    assert _travel(destino="Venezuela", nacionalidad="colombiana") == ()
    facts = _facts("autorizacion_viaje", fields={**FIELDS, "destino": "Venezuela"})
    assert "riesgo de cesación" in " ".join(assess(facts, CAL).alerts)


# -- authority block (TUO Ley 27444, art. 4.3) --------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> DocumentSigner:
    pki = create_demo_pki(tmp_path_factory.mktemp("keys"))
    return DocumentSigner.from_pkcs12(pki.signer_p12, pki.signer_password)


def test_automatic_documents_name_the_responsible_authority(
    tmp_path: Path, sqlite_db: Database, signer: DocumentSigner
) -> None:
    base = make_settings(tmp_path / "data")
    settings = base.model_copy(
        update={
            "institution": Institution(
                public_url=base.institution.public_url,
                authority_name="Carmen Salas Quispe",
                authority_position="Secretaria Técnica de la CEPR",
            )
        }
    )
    texts = {}
    with sqlite_db.session() as session:
        for automatic in (True, False):
            case = add_case(session, "prorroga_residencia", f"EXP-2026-00000{int(automatic)}")
            doc = issue_document(
                session, settings, case_data(case, "oficio"), "oficio", f"e{automatic}", NOW,
                signer=signer, automatic=automatic,
            )  # fmt: skip
            pdf = (settings.data_dir / doc.path).read_bytes()
            texts[automatic] = " ".join(read_pdf(pdf).text.split())
    auto, manual = texts[True], texts[False]
    for text in (auto, manual):  # the signature block names the authority on every oficio
        assert "Carmen Salas Quispe" in text and "Secretaria Técnica de la CEPR" in text
    assert "sistema automatizado" in auto and "Ley N° 27444" in auto
    assert "Autoridad responsable: Carmen Salas Quispe" in auto
    assert "sistema automatizado" not in manual


# -- Migraciones address -------------------------------------------------------------------


def test_refusal_only_when_an_automatic_procedure_has_no_address() -> None:
    refusal = migraciones_refusal(SETTINGS, CATALOGUE)
    assert (
        refusal and "prorroga_residencia" in refusal and "MAILFLOW_MIGRACIONES_ADDRESS" in refusal
    )
    configured = SETTINGS.model_copy(
        update={"migraciones": MigracionesSettings(address="oficios@migraciones.gob.pe")}
    )
    assert migraciones_refusal(configured, CATALOGUE) is None
    staff_only = [t for t in CATALOGUE if t.issue != "automatic"]
    assert migraciones_refusal(SETTINGS, staff_only) is None


def test_run_refuses_to_start_without_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = SETTINGS.model_copy(update={"data_dir": tmp_path})
    assert run(settings, once=True) == 2
    assert "migraciones.address no está configurado" in capsys.readouterr().err


def test_serve_refuses_to_start_without_the_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--config", str(ROOT / "config.yaml"), "serve", "--port", "0"],
        env={"MAILFLOW_DATA_DIR": str(tmp_path), "MAILFLOW_MIGRACIONES_ADDRESS": ""},
    )
    assert result.exit_code == 2
    assert "migraciones.address no está configurado" in result.output


def test_env_sets_the_address_and_check_never_needs_it(tmp_path: Path) -> None:
    env = {"MAILFLOW_MIGRACIONES_ADDRESS": "oficios@migraciones.gob.pe"}
    assert (
        load_settings(ROOT / "config.yaml", env=env).migraciones.address
        == env["MAILFLOW_MIGRACIONES_ADDRESS"]
    )
    sample = next((ROOT / "samples").rglob("*.eml"))
    result = CliRunner().invoke(
        cli, ["--config", str(ROOT / "config.yaml"), "check", str(sample)],
        env={"MAILFLOW_DATA_DIR": str(tmp_path), "MAILFLOW_MIGRACIONES_ADDRESS": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "decisión" in result.output


def test_settings_model_has_safe_defaults() -> None:
    settings = Settings()
    assert settings.migraciones.address is None
    assert settings.institution.authority_name and settings.institution.authority_position
