"""Tests for the lifecycle definitions, their validation and the transitions-based interpreter."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailflow.cases.machines import (
    Effect,
    GuardContext,
    IllegalTransition,
    Lifecycle,
    MachineDefinition,
    TransitionDef,
    build_lifecycles,
    load_machines,
    to_mermaid,
)

ROOT = Path(__file__).resolve().parents[2]
MACHINES_DIR = ROOT / "state_machines"
TEMPLATES_DIR = ROOT / "templates"
DEFINITIONS = load_machines(MACHINES_DIR, TEMPLATES_DIR)
LIFECYCLES = build_lifecycles(DEFINITIONS)
ALL_EVENTS = sorted({e for d in DEFINITIONS.values() for e in d.events} | {"evento_inventado"})

CONTEXTS = [
    GuardContext(
        actor,
        complete,
        required,
        status,
        extemp,
        expired,
        docs,
        issue_automatic=auto,
        registered_sender=registered,
        escrito_presented=escrito,
        cargo_issued=cargo,
    )
    for actor, complete, required, status, extemp, expired, docs, (auto, registered), (
        escrito,
        cargo,
    ) in itertools.product(
        ("system", "staff"),
        (True, False),
        (True, False),
        ("valid", "invalid", "unsigned"),
        (True, False),
        (True, False),
        (frozenset(), frozenset({"oficio", "autorizacion_viaje"})),
        ((False, False), (True, True), (True, False), (False, True)),
        ((False, False), (True, False), (True, True)),
    )
]


@dataclass
class Case:
    """A stand-in for the case row: only the state attribute matters to the interpreter."""

    state: str


def _firing_context(life: Lifecycle, source: str, wanted: TransitionDef) -> GuardContext:
    """A context under which firing `wanted.event` from `source` takes exactly `wanted`."""
    for ctx in CONTEXTS:
        case = Case(source)
        try:
            result = life.fire(case, wanted.event, context=ctx)
        except IllegalTransition:
            continue
        if result.transition is wanted:
            return ctx
    raise AssertionError(f"no context fires {wanted.event} from {source} (line {wanted.line})")


def _path(defn: MachineDefinition, goal: str) -> list[tuple[str, TransitionDef]]:
    """Shortest list of (source, transition) from the initial state to `goal`."""
    queue: deque[tuple[str, list[tuple[str, TransitionDef]]]] = deque([(defn.initial, [])])
    seen = {defn.initial}
    while queue:
        state, steps = queue.popleft()
        if state == goal:
            return steps
        for t in defn.allowed_events(state):
            if t.dest not in seen:
                seen.add(t.dest)
                queue.append((t.dest, [*steps, (state, t)]))
    raise AssertionError(f"{goal} unreachable in {defn.id}")


def test_repository_definitions_load_with_versions() -> None:
    assert set(DEFINITIONS) == {"general", "recurso", "oficio", "informativo"}
    for defn in DEFINITIONS.values():
        assert isinstance(defn.version, int) and defn.version >= 1
        assert defn.description
        assert not defn.is_final(defn.initial)


def test_every_rule_names_an_existing_machine() -> None:
    referenced = {
        yaml.safe_load(path.read_text(encoding="utf-8")).get("machine")
        for path in (ROOT / "rules").glob("*.yaml")
    } - {None}
    assert referenced, "rules/ should reference machines"
    assert referenced <= set(DEFINITIONS)


@pytest.mark.parametrize("machine_id", sorted(DEFINITIONS))
def test_every_transition_can_fire_with_some_context(machine_id: str) -> None:
    defn, life = DEFINITIONS[machine_id], LIFECYCLES[machine_id]
    for t in defn.transitions:
        for source in t.sources:
            ctx = _firing_context(life, source, t)
            case = Case(source)
            result = life.fire(case, t.event, context=ctx)
            assert (result.source, result.dest, case.state) == (source, t.dest, t.dest)
            assert result.effects == t.effects
            assert result.final == defn.is_final(t.dest)


@pytest.mark.parametrize("machine_id", sorted(DEFINITIONS))
def test_walk_from_initial_to_every_final_state(machine_id: str) -> None:
    defn, life = DEFINITIONS[machine_id], LIFECYCLES[machine_id]
    finals = [s.name for s in defn.states if s.final]
    assert finals
    for goal in finals:
        case = Case(defn.initial)
        result = None
        for source, t in _path(defn, goal):
            result = life.fire(case, t.event, context=_firing_context(life, source, t))
        assert case.state == goal and defn.is_final(goal)
        assert result is not None and result.final


@pytest.mark.parametrize("machine_id", sorted(DEFINITIONS))
def test_every_event_not_allowed_in_a_state_is_refused(machine_id: str) -> None:
    defn, life = DEFINITIONS[machine_id], LIFECYCLES[machine_id]
    refused = 0
    for state in defn.states:
        allowed = {t.event for t in defn.allowed_events(state.name)}
        for event in ALL_EVENTS:
            if event in allowed:
                continue
            case = Case(state.name)
            with pytest.raises(IllegalTransition) as info:
                life.fire(case, event, context=GuardContext(actor="staff"))
            assert (
                str(info.value) == f"El evento {event} no está permitido en el estado {state.name}"
            )
            assert case.state == state.name
            refused += 1
    assert refused > 0


@pytest.mark.parametrize("machine_id", ["general", "recurso", "oficio"])
def test_automatic_evaluation_and_subsanacion_always_decide(machine_id: str) -> None:
    life = LIFECYCLES[machine_id]
    for ctx in (c for c in CONTEXTS if c.actor == "system"):
        assert life.fire(Case("recibido"), "evaluar", context=ctx).dest != "recibido"
        assert life.fire(Case("observado"), "subsanar", context=ctx).source == "observado"


def test_failed_guard_is_refused_and_named() -> None:
    life = LIFECYCLES["general"]
    case = Case("observado")
    with pytest.raises(IllegalTransition) as info:
        life.fire(case, "vencer_subsanacion", context=GuardContext(subsanacion_expired=False))
    assert info.value.failed_guards == ("subsanacion_window_expired",)
    assert "no está permitido en el estado observado" in str(info.value)
    assert case.state == "observado"


def test_actor_is_enforced() -> None:
    life = LIFECYCLES["general"]
    case = Case("en_tramite")
    with pytest.raises(IllegalTransition) as info:
        life.fire(case, "resolver", context=GuardContext(actor="system"))
    assert info.value.failed_guards == ("actor staff",)
    assert case.state == "en_tramite"
    result = life.fire(case, "resolver", context=GuardContext(actor="staff"))
    assert result.effects == (
        Effect("apply_registry_update"),
        Effect("stop_clock"),
        Effect("send_reply", "resuelto"),
    )


def test_effects_are_returned_as_data_not_performed() -> None:
    life = LIFECYCLES["general"]
    complete = life.fire(
        Case("recibido"), "evaluar", context=GuardContext(requirements_complete=True)
    )
    assert complete.dest == "en_tramite"
    assert complete.effects == (Effect("start_clock"), Effect("send_reply", "acuse_recibo"))
    missing = life.fire(Case("recibido"), "evaluar", context=GuardContext())
    assert missing.dest == "observado"
    assert [e.kind for e in missing.effects] == [
        "start_clock",
        "pause_clock",
        "open_subsanacion_window",
        "send_reply",
    ]


def test_unsigned_document_never_passes_silently() -> None:
    ctx = GuardContext(
        requirements_complete=True, signature_required=True, signature_status="unsigned"
    )
    result = LIFECYCLES["recurso"].fire(Case("recibido"), "evaluar", context=ctx)
    assert result.dest == "en_revision"
    assert Effect("flag", "firma_no_valida") in result.effects
    assert not any(e.kind == "issue_document" for e in result.effects)


def test_recurso_cargo_at_once_and_extemporaneo_flag() -> None:
    life = LIFECYCLES["recurso"]
    base = GuardContext(
        requirements_complete=True, signature_required=True, signature_status="valid"
    )
    on_time = life.fire(Case("recibido"), "evaluar", context=base)
    late = life.fire(Case("recibido"), "evaluar", context=replace(base, extemporaneo=True))
    assert on_time.dest == late.dest == "cargo_emitido"
    assert Effect("issue_document", "cargo") in on_time.effects
    assert Effect("flag", "extemporaneo") not in on_time.effects
    assert Effect("flag", "extemporaneo") in late.effects


def test_oficio_issues_travel_authorization_only_when_the_procedure_does() -> None:
    life = LIFECYCLES["oficio"]
    travel = GuardContext(actor="staff", documents=frozenset({"oficio", "autorizacion_viaje"}))
    kinds = [e.arg for e in life.fire(Case("validado"), "emitir_oficio", context=travel).effects]
    assert kinds == ["oficio", "autorizacion_viaje", "migraciones"]
    staff = GuardContext(actor="staff")
    plain = life.fire(Case("validado"), "emitir_oficio", context=staff).effects
    assert [(e.kind, e.arg) for e in plain] == [
        ("issue_document", "oficio"),
        ("deliver", "migraciones"),
    ]


def test_allowed_events_by_actor_give_staff_buttons() -> None:
    defn = DEFINITIONS["general"]
    staff = {t.event: t.label for t in defn.allowed_events("en_tramite", "staff")}
    assert staff["resolver"] == "Resolver y responder"
    assert {"observar", "rechazar", "declarar_improcedente"} <= set(staff)
    assert defn.allowed_events("en_tramite", "system") == []
    system = {t.event for t in defn.allowed_events("recibido", "system")}
    assert system == {"evaluar", "derivar_a_revision"}


def test_trigger_does_not_bind_or_touch_other_cases() -> None:
    life = LIFECYCLES["general"]
    first, second = Case("recibido"), Case("recibido")
    life.fire(first, "evaluar", context=GuardContext(requirements_complete=True))
    assert (first.state, second.state) == ("en_tramite", "recibido")
    assert life.machine.models == []
    assert not hasattr(first, "evaluar") and not hasattr(first, "trigger")


def test_ten_thousand_events_are_fast() -> None:
    life = LIFECYCLES["general"]
    ctx = GuardContext(requirements_complete=True)
    cases = [Case("recibido") for _ in range(10_000)]
    started = time.perf_counter()
    for case in cases:
        life.fire(case, "evaluar", context=ctx)
    elapsed = time.perf_counter() - started
    assert all(c.state == "en_tramite" for c in cases)
    print(f"10,000 events in {elapsed * 1000:.0f} ms ({elapsed * 100:.1f} µs each)")
    assert elapsed < 10.0


def test_state_attribute_can_be_renamed() -> None:
    @dataclass
    class Row:
        estado: str

    life = Lifecycle(DEFINITIONS["informativo"], attribute="estado")
    row = Row("recibido")
    assert life.fire(row, "informar", context=GuardContext()).final
    assert row.estado == "informado"


def test_mermaid_lists_states_and_transitions() -> None:
    text = to_mermaid(DEFINITIONS["recurso"])
    assert text.startswith("stateDiagram-v2\n    [*] --> recibido\n")
    assert 'state "Cargo emitido" as cargo_emitido' in text
    assert "cargo_emitido --> derivado: Derivar para resolver" in text
    assert "archivado --> [*]" in text
    assert "[requirements_complete, signature_valid, is_extemporaneo]" in text


def test_reply_templates_render_in_spanish() -> None:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined)
    names = {
        e.arg
        for d in DEFINITIONS.values()
        for t in d.transitions
        for e in t.effects
        if e.kind == "send_reply"
    }
    assert {"acuse_recibo", "observacion", "no_presentado", "cargo_enviado"} <= names
    for path in (TEMPLATES_DIR / "replies").glob("[a-z]*.txt.j2"):
        for tramite in ("actualizacion_datos", "renuncia", "apelacion", "autorizacion_viaje"):
            text = env.get_template(f"replies/{path.name}").render(
                case={
                    "number": "EXP-2026-000042",
                    "due_date": "16/12/2026",
                    "legal_receipt_day": "viernes 27 de noviembre de 2026",
                    "receipt_rule": "Presentación digital en día hábil (Ley N° 31465).",
                },
                applicant={"name": "Ana Gómez"},
                missing=["Teléfono de contacto", "Documento firmado"],
                tramite={"id": tramite, "name": "Trámite de prueba"},
                institution={"name": "Comisión Especial para los Refugiados"},
                note="",
                changes=[],
            )
            assert text.startswith("Estimado(a) Ana Gómez:")
            assert "Comisión Especial para los Refugiados" in text
            assert "{{" not in text and "{%" not in text
    observacion = env.get_template("replies/observacion.txt.j2").render(
        case={"number": "X-1", "due_date": "-"},
        applicant={"name": None},
        missing=["Teléfono", "Carné de extranjería"],
        tramite={"id": "t", "name": "T"},
        institution={"name": "CEPR"},
        subsanacion_deadline="25/11/2026",
    )
    assert "1. Teléfono\n" in observacion and "2. Carné de extranjería\n" in observacion
    assert "a más tardar el 25/11/2026" in observacion
    assert observacion.startswith("Estimado(a) solicitante:")
