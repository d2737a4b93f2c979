"""Start-up rejects a mail template naming a variable the engine does not provide."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path: Path, name: str, old: str, new: str) -> tuple[App, Path, int]:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    path = templates / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if new.strip() in t)
    settings = load_settings(ROOT / "config.yaml", env={}).model_copy(
        update={"templates_dir": templates, "data_dir": tmp_path / "data"}
    )
    return App(settings), path, line


def test_shipped_templates_pass() -> None:
    App(load_settings(ROOT / "config.yaml", env={})).validate_templates()


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("replies/acuse_recibo.txt.j2", "{{ case.number }}", "{{ case.numero }}"),
        ("channel/oficio_migraciones.txt.j2", "{{ case.number }}", "{{ expediente_numero }}"),
        ("replies/resuelto.txt.j2", "{{ tramite.name }}", "{{ tramite.nombre }}"),
    ],
)
def test_unknown_variable_is_rejected_with_file_and_line(
    tmp_path: Path, name: str, old: str, new: str
) -> None:
    app, path, line = _app(tmp_path, name, old, new)
    with pytest.raises(DefinitionError) as caught:
        app.validate()
    assert f"{path}:{line}: la plantilla usa algo que el motor no ofrece" in str(caught.value)


def test_syntax_error_is_rejected_with_file_and_line(tmp_path: Path) -> None:
    app, path, line = _app(
        tmp_path, "replies/admitido.txt.j2", "{{ case.number }}", "{{ case.number"
    )
    with pytest.raises(DefinitionError, match="sintaxis inválida") as caught:
        app.validate_templates()
    assert f"{path}:{line}: sintaxis inválida" in str(caught.value)
