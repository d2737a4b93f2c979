"""Tests for the line-keeping YAML loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mailflow.errors import DefinitionError
from mailflow.yamlsource import load_yaml, parse_yaml

TEXT = """\
# comentario
id: ejemplo
items:
  - name: uno
    tags: [a, b]
  -
    name: dos
anchor: &base {x: 1}
merged:
  <<: *base
  y: 2
"""


def test_data_is_plain_and_lines_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "ejemplo.yaml"
    path.write_text(TEXT, encoding="utf-8")
    src = load_yaml(path)
    assert src.data == {
        "id": "ejemplo",
        "items": [{"name": "uno", "tags": ["a", "b"]}, {"name": "dos"}],
        "anchor": {"x": 1},
        "merged": {"x": 1, "y": 2},
    }
    assert type(src.data) is dict and type(src.data["items"]) is list
    assert src.line("id") == 2
    assert src.line("items", 0) == 4
    assert src.line("items", 0, "tags", 1) == 5
    assert src.line("items", 1) == 7  # a block mapping starts at its first key
    assert src.line("merged", "x") == 8  # merged keys keep the line of their anchor
    assert src.line("items", 1, "name") == 7
    assert src.line("merged", "y") == 11
    assert src.line("items", 1, "missing", 3) == 7  # nearest known ancestor
    assert src.where("items", 1, "name") == f"{path}:7"
    assert str(src.error("mal", "id")) == f"{path}:2: mal"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "YAML inválido"),
        ("a: 1\n  b: 2\n", 2, "YAML inválido"),
        ("a: 1\nb: 2\na: 3\n", 3, "clave duplicada 'a'"),
        ("a: &x [*x]\n", 1, "alias recursivo"),
        ("---\na: 1\n---\nb: 2\n", 3, "YAML inválido"),
        ("? [1, 2]\n: lista como clave\n", 1, "clave no válida"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_yaml(text, Path("conf/x.yaml"))
    assert str(info.value).startswith(f"conf/x.yaml:{line}: ")
    assert fragment in str(info.value)


def test_empty_document_and_missing_file(tmp_path: Path) -> None:
    empty = parse_yaml("# nada\n", Path("vacio.yaml"))
    assert empty.data is None and empty.line("cualquier") == 1
    with pytest.raises(DefinitionError, match="no existe"):
        load_yaml(tmp_path / "no.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("a: ñ".encode("latin-1"))
    with pytest.raises(DefinitionError, match="no se puede leer"):
        load_yaml(bad)


def test_libyaml_and_the_pure_python_parser_give_the_same_data_and_lines() -> None:
    from mailflow import yamlsource

    assert yamlsource._LOADER is yaml.CSafeLoader  # built with libyaml here: the fast path runs
    repo = Path(__file__).resolve().parents[1]
    policy = (
        p for d in ("rules", "state_machines", "templates") for p in (repo / d).rglob("*.yaml")
    )
    files = [repo / "config.yaml", *sorted(policy)]
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        fast = yamlsource._parse(text, path, yaml.CSafeLoader)
        pure = yamlsource._parse(text, path, yaml.SafeLoader)
        assert (fast.data, fast.lines) == (pure.data, pure.lines), path
