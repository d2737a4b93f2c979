"""The procedure catalogue: the repository's rules load; bad definitions fail with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailflow.errors import DefinitionError
from mailflow.intake.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = {
    "actualizacion_datos",
    "cambio_clave",
    "reconsideracion",
    "apelacion",
    "renuncia",
    "prorroga_residencia",
    "duplicado_carne_extranjeria",
    "autorizacion_viaje",
    "carne_solicitante",
}
FIELDS = {
    "nombres_apellidos", "nacionalidad", "documento_identidad", "carne_extranjeria", "telefono",
    "correo", "sexo", "fecha_nacimiento", "motivo", "destino", "fecha_salida", "fecha_retorno",
    "denuncia_policial", "fecha_notificacion",
}  # fmt: skip


def test_repository_catalogue_has_the_canonical_procedures() -> None:
    cat = load_catalogue(ROOT / "rules", FIELDS)
    assert set(cat.tramites) == CANONICAL
    assert {t.id for t in cat if t.signature_required} == {
        "reconsideracion",
        "apelacion",
        "renuncia",
        "autorizacion_viaje",
    }
    assert cat.get("autorizacion_viaje").term_days == 5
    assert cat.get("carne_solicitante").informative
    assert cat.get("duplicado_carne_extranjeria").required_attachments == ("denuncia_policial",)
    assert cat.get("reconsideracion").filing_limit_days == 15
    assert [c.field for c in cat.get("renuncia").conditional_fields] == ["carne_extranjeria"]
    assert {t.id for t in cat.topics} >= {"reunificacion_familiar", "consulta"}


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


@pytest.mark.parametrize(
    ("edit", "needle", "line"),
    [
        (("term_days: 15", "term_days: quince"), "term_days", 23),
        (("machine: general", "machine: general\ncolor: rojo"), "color: clave desconocida", 28),
        (("signature: none", "signature: maybe"), "signature", 22),
    ],
)
def test_bad_values_are_reported_with_file_and_line(
    rules: Path, edit: tuple[str, str], needle: str | None, line: int | None
) -> None:
    path = rules / "actualizacion_datos.yaml"
    text = path.read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_catalogue(rules, FIELDS)
    message = str(err.value)
    assert needle in message
    assert f"{path}:{line}:" in message


def test_unknown_field_names_file_and_line(rules: Path) -> None:
    path = rules / "cambio_clave.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "required_fields: [nombres_apellidos,", "required_fields: [nombre_completo,"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        DefinitionError, match=r"cambio_clave\.yaml:\d+: campo desconocido 'nombre_completo'"
    ):
        load_catalogue(rules, FIELDS)


def test_yaml_syntax_error_and_id_mismatch(rules: Path) -> None:
    (rules / "renuncia.yaml").write_text("id: renuncia\nname: [Renuncia\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"renuncia\.yaml:\d+"):
        load_catalogue(rules, FIELDS)
    (rules / "renuncia.yaml").write_text(
        (ROOT / "rules" / "apelacion.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(DefinitionError, match="no coincide con el nombre del archivo"):
        load_catalogue(rules, FIELDS)


def test_empty_or_missing_rules_directory(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no existe"):
        load_catalogue(tmp_path / "nada")
    (tmp_path / "vacio").mkdir()
    with pytest.raises(DefinitionError, match="no hay trámites"):
        load_catalogue(tmp_path / "vacio")
