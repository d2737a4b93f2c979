"""The fixture corpus: every realistic message gets exactly the decision the published rules demand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.intake.decision import DISPOSITIONS, Decision
from mailflow.ops.checking import check_bytes
from tests.corpus.cases import CASES
from tests.corpus.compose import REQUIRED, Expect, Kit, make_kit
from tests.corpus.specials import SPECIAL_CASES

ROOT = Path(__file__).resolve().parents[2]
MAIL = ROOT / "tests" / "fixtures" / "mail"
GENERATED = {case.name: case for case in [*CASES, *SPECIAL_CASES]}
SIGNATURE_STATUSES = ("valid", "untrusted", "invalid", "unsigned", "absent")
PROCEDURES = (*REQUIRED, "carne_solicitante")


def _static() -> dict[str, Expect]:
    data: dict[str, dict[str, Any]] = yaml.safe_load((MAIL / "expected.yaml").read_text("utf-8"))
    return {
        name: Expect(
            e["disposition"],
            e["tramite"],
            tuple(e.get("missing", ())),
            e.get("signature", "absent"),
            e.get("fields", {}),
            tuple(e.get("flags", ())),
        )
        for name, e in data.items()
    }


STATIC = _static()
SAMPLES = {  # samples/*.eml, the README's first command: one per procedure and the usual odd ones
    "01_actualizacion_datos.eml": Expect("accept", "actualizacion_datos"),
    "02_cambio_clave.eml": Expect("accept", "cambio_clave"),
    "03_reconsideracion.eml": Expect("observe", "reconsideracion", ("documento_firmado",)),
    "04_apelacion.eml": Expect("observe", "apelacion", ("documento_firmado",)),
    "05_renuncia.eml": Expect("observe", "renuncia", ("documento_firmado",)),
    "06_prorroga_residencia.eml": Expect("accept", "prorroga_residencia"),
    "07_duplicado_carne.eml": Expect("accept", "duplicado_carne_extranjeria"),
    "08_autorizacion_viaje.eml": Expect("observe", "autorizacion_viaje", ("documento_firmado",)),
    "09_carne_solicitante.eml": Expect("inform", "carne_solicitante"),
    "10_incompleto.eml": Expect(
        "observe",
        "prorroga_residencia",
        ("sexo", "nacionalidad", "documento_identidad", "fecha_nacimiento"),
        fields={"carne_extranjeria": "002223334", "telefono": "+51987654321"},
    ),
    "11_respuesta_automatica.eml": Expect("ignore", None),
    "12_fuera_de_catalogo.eml": Expect("inform", None),  # reunificación: its channel is named
}


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return make_kit(tmp_path_factory.mktemp("corpus-pki"))


@pytest.fixture(scope="session")
def app(kit: Kit) -> App:
    settings = load_settings(ROOT / "config.yaml", env={})
    signatures = settings.signatures.model_copy(update={"trust_roots": (kit.ca_pem,)})
    built = App(settings.model_copy(update={"signatures": signatures}))
    built.validate()
    return built


def _assert_decision(decision: Decision, expected: Expect) -> None:
    got = {
        "disposition": decision.disposition,
        "tramite": decision.tramite,
        "missing": list(decision.missing),
        "signature": decision.signature.status,
    }
    want = {
        "disposition": expected.disposition,
        "tramite": expected.tramite,
        "missing": list(expected.missing),
        "signature": expected.signature,
    }
    detail = f"reasons={list(decision.reasons)} fields={decision.fields} invalid={decision.invalid}"
    assert got == want, detail
    wrong = {
        k: decision.fields.get(k) for k, v in expected.fields.items() if decision.fields.get(k) != v
    }
    assert not wrong, (
        f"normalised fields differ: got {wrong}, want {dict(expected.fields)}; {detail}"
    )
    assert set(expected.flags) <= set(decision.flags), detail


def test_static_files_all_have_expectations() -> None:
    files = {p.name for p in MAIL.glob("*.eml")}
    assert files == set(STATIC), (
        f"sin expectativa: {files - set(STATIC)}; sin archivo: {set(STATIC) - files}"
    )


@pytest.mark.parametrize("name", sorted(STATIC))
def test_static_message(name: str, app: App) -> None:
    decision = check_bytes(app, (MAIL / name).read_bytes())
    _assert_decision(decision, STATIC[name])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_message(name: str, app: App) -> None:
    assert {p.name for p in (ROOT / "samples").glob("*.eml")} == set(SAMPLES)
    _assert_decision(check_bytes(app, (ROOT / "samples" / name).read_bytes()), SAMPLES[name])


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_message(name: str, app: App, kit: Kit) -> None:
    case = GENERATED[name]
    decision = check_bytes(app, case.make(kit))
    _assert_decision(decision, case.expect)


def _all_expectations() -> Iterator[Expect]:
    yield from STATIC.values()
    for case in GENERATED.values():
        yield case.expect


def test_corpus_covers_every_procedure_disposition_and_signature_status() -> None:
    expectations = list(_all_expectations())
    assert len(expectations) >= 170
    per_procedure = {p: sum(e.tramite == p for e in expectations) for p in PROCEDURES}
    assert all(n >= 12 for p, n in per_procedure.items() if p != "carne_solicitante"), per_procedure
    assert per_procedure["carne_solicitante"] >= 3
    assert {e.disposition for e in expectations} == set(DISPOSITIONS)
    assert {e.signature for e in expectations} == set(SIGNATURE_STATUSES)
    assert sum(e.disposition == "ignore" for e in expectations) >= 10
    assert sum(e.disposition == "review" and e.tramite is None for e in expectations) >= 8
    assert any("extemporaneo" in e.flags for e in expectations)
