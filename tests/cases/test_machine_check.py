"""Tests for lifecycle validation: each bad definition is rejected with `file:line: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.cases.machines import Effect, load_machine, load_machines
from mailflow.errors import DefinitionError

GOOD = """\
id: prueba
version: 1
description: Ciclo mínimo de prueba.
initial: recibido
states:
  - {name: recibido, label: Recibido, sla: running}
  - {name: en_tramite, label: En trámite}
  - {name: archivado, label: Archivado, final: true}
transitions:
  - event: evaluar
    source: recibido
    dest: en_tramite
    guard: requirements_complete
    effects:
      - start_clock
      - send_reply: acuse
  - event: archivar
    source: "*"
    dest: archivado
    actor: staff
    effects:
      - stop_clock
      - issue_document: constancia
events:
  new_request: evaluar
"""


@pytest.fixture()
def templates(tmp_path: Path) -> Path:
    replies = tmp_path / "templates" / "replies"
    replies.mkdir(parents=True)
    (replies / "acuse.txt.j2").write_text("Hola {{ applicant.name }}", encoding="utf-8")
    return tmp_path / "templates"


def _write(tmp_path: Path, text: str, name: str = "prueba.yaml") -> Path:
    directory = tmp_path / "machines"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_definition_loads(tmp_path: Path, templates: Path) -> None:
    defn = load_machine(_write(tmp_path, GOOD), templates)
    assert defn.version == 1
    assert defn.transitions[1].sources == ("recibido", "en_tramite")
    assert defn.transitions[1].effects[1] == Effect("issue_document", "constancia")


BAD = {
    "unknown top-level key": (
        "version: 1\n",
        "version: 1\nowner: alguien  #!\n",
        "clave desconocida 'owner'",
    ),
    "unknown dest state": ("    dest: en_tramite\n", "    dest: en_tramit  #!\n", "'en_tramit'"),
    "unknown source state": (
        "    source: recibido\n",
        "    source: [recibido, nada]  #!\n",
        "origen desconocido 'nada'",
    ),
    "unknown guard": (
        "    guard: requirements_complete\n",
        "    guard: cumple_todo  #!\n",
        "guarda desconocida 'cumple_todo'",
    ),
    "unknown effect": ("      - start_clock\n", "      - beep  #!\n", "efecto desconocido 'beep'"),
    "unknown document kind": ("constancia\n", "pasaporte  #!\n", "'pasaporte'"),
    "missing template": ("acuse\n", "saludo  #!\n", "saludo.txt.j2"),
    "unknown actor": ("    actor: staff\n", "    actor: robot  #!\n", "actor desconocido 'robot'"),
    "duplicate state": (
        "  - {name: archivado,",
        "  - {name: recibido, label: Otra vez}  #!\n  - {name: archivado,",
        "estado duplicado 'recibido'",
    ),
    "missing version": ("version: 1\n", "", "'version'"),
    "version not integer": ("version: 1\n", "version: uno  #!\n", "entero"),
    "unknown sla": ("sla: running}", "sla: corriendo}  #!", "sla desconocido"),
    "final state with exit": (
        '    source: "*"\n',
        "    source: [recibido, archivado]  #!\n",
        "estado final 'archivado'",
    ),
    "yaml syntax": (
        "description: Ciclo mínimo de prueba.\n",
        "description: [sin cerrar  #!\n",
        "YAML inválido",
    ),
    "unknown engine event": (
        "  new_request: evaluar\n",
        "  new_request: evaluar\n  nuevo_correo: evaluar  #!\n",
        "clave desconocida 'nuevo_correo'",
    ),
    "engine event without transitions": (
        "  new_request: evaluar\n",
        "  new_request: evaluar\n  follow_up: subsanar  #!\n",
        "'subsanar' no tiene transiciones",
    ),
    "no way in": (
        "events:\n  new_request: evaluar\n",
        "events:  #!\n  to_review: evaluar\n",
        "falta new_request o inform",
    ),
    "unknown disposition": (
        "  - {name: en_tramite, label: En trámite}\n",
        "  - {name: en_tramite, label: En trámite, disposition: aceptar}  #!\n",
        "disposition desconocida 'aceptar'",
    ),
    "queue not boolean": (
        "  - {name: en_tramite, label: En trámite}\n",
        "  - {name: en_tramite, label: En trámite, queue: si}  #!\n",
        "queue debe ser true o false",
    ),
    "unknown reason mode": (
        "    actor: staff\n",
        "    actor: staff\n    reason: obligatorio  #!\n",
        "reason desconocido 'obligatorio'",
    ),
    "unknown delivery target": (
        "      - stop_clock\n",
        "      - stop_clock\n      - deliver: sunarp  #!\n",
        "deliver: valor desconocido 'sunarp'",
    ),
    "duplicate key": (
        "initial: recibido\n",
        "initial: recibido\ninitial: otro  #!\n",
        "clave duplicada 'initial'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_loader_rejects_bad_definitions_with_file_and_line(
    case: str, tmp_path: Path, templates: Path
) -> None:
    old, new, fragment = BAD[case]
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    marked = [i + 1 for i, line in enumerate(text.splitlines()) if "#!" in line]
    line = marked[0] if marked else 1
    if case == "yaml syntax":
        line = line + 1  # PyYAML reports the unclosed flow sequence where it notices it
    path = _write(tmp_path, text)
    with pytest.raises(DefinitionError) as info:
        load_machines(path.parent, templates)
    message = str(info.value)
    assert f"prueba.yaml:{line}: " in message, message
    assert fragment in message


GRAPH_BAD = {
    "unreachable state": (
        "  - {name: archivado, label: Archivado, final: true}\n",
        "  - {name: archivado, label: Archivado, final: true}\n  - {name: huerfano, label: Huérfano}  #!\n",
        "no es alcanzable",
    ),
    "dead end": (
        '    source: "*"\n',
        "    source: recibido\n",
        "'en_tramite' no es final y no tiene transiciones de salida",
    ),
    "shadowed transition": (
        "    actor: staff\n",
        "    actor: staff\n  - event: archivar  #!\n    source: recibido\n    dest: en_tramite\n    actor: staff\n",
        "transición inalcanzable",
    ),
}


@pytest.mark.parametrize("case", sorted(GRAPH_BAD))
def test_loader_rejects_bad_graphs_with_file_and_line(
    case: str, tmp_path: Path, templates: Path
) -> None:
    old, new, fragment = GRAPH_BAD[case]
    text = GOOD.replace(old, new, 1)
    marked = [i + 1 for i, line in enumerate(text.splitlines()) if "#!" in line]
    expected = marked[0] if marked else 7  # the en_tramite state line for the dead end
    with pytest.raises(DefinitionError) as info:
        load_machine(_write(tmp_path, text), templates)
    assert f"prueba.yaml:{expected}: " in str(info.value)
    assert fragment in str(info.value)


def test_loader_reports_every_problem_at_once(tmp_path: Path, templates: Path) -> None:
    text = GOOD.replace("guard: requirements_complete", "guard: magia").replace(
        "constancia", "pasaporte"
    )
    with pytest.raises(DefinitionError) as info:
        load_machine(_write(tmp_path, text), templates)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert "guarda desconocida 'magia'" in lines[0]
    assert "valor desconocido 'pasaporte'" in lines[1]
    assert ":13: " in lines[0] and ":23: " in lines[1]


def test_duplicate_ids_and_empty_directory_are_rejected(tmp_path: Path, templates: Path) -> None:
    empty = tmp_path / "vacio"
    empty.mkdir()
    with pytest.raises(DefinitionError, match="no hay definiciones"):
        load_machines(empty, templates)
    _write(tmp_path, GOOD, "a.yaml")
    path = _write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(DefinitionError) as info:
        load_machines(path.parent, templates)
    assert "b.yaml:1: el id 'prueba' ya está definido en" in str(info.value)
    assert "a.yaml" in str(info.value)


def test_non_mapping_document_is_rejected(tmp_path: Path, templates: Path) -> None:
    with pytest.raises(DefinitionError, match=r"prueba\.yaml:1: la definición debe ser un mapa"):
        load_machine(_write(tmp_path, "- solo\n- una lista\n"), templates)


def test_missing_events_block_is_reported(tmp_path: Path, templates: Path) -> None:
    text = GOOD.replace("events:\n  new_request: evaluar\n", "")
    with pytest.raises(
        DefinitionError, match=r"prueba\.yaml:1: falta la clave obligatoria 'events'"
    ):
        load_machine(_write(tmp_path, text), templates)


def test_contract_keys_are_read_into_the_definition(tmp_path: Path, templates: Path) -> None:
    text = GOOD.replace(
        "  - {name: en_tramite, label: En trámite}",
        "  - {name: en_tramite, label: En trámite, disposition: review, queue: true}",
    ).replace("    actor: staff\n", "    actor: staff\n    reason: required\n")
    defn = load_machine(_write(tmp_path, text), templates)
    assert defn.event_for("new_request") == "evaluar" and defn.event_for("follow_up") is None
    assert defn.state("en_tramite").disposition == "review" and defn.queue_states == ("en_tramite",)
    assert defn.state("recibido").disposition == "accept"
    assert defn.needs_reason("en_tramite", "archivar") and not defn.needs_reason(
        "recibido", "evaluar"
    )


def test_effect_registry_is_the_single_source_of_names() -> None:
    from mailflow.cases import machine_check
    from mailflow.cases.effect_registry import EFFECTS

    assert set(machine_check.PLAIN_EFFECTS) | set(machine_check.ARG_EFFECTS) == set(EFFECTS)
    assert all(callable(spec.handler) and spec.description for spec in EFFECTS.values())
