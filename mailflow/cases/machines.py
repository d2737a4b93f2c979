"""Case lifecycles as data: load, validate and run `state_machines/*.yaml` with `transitions`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from transitions import EventData, Machine

from mailflow.cases.machine_check import check_definition
from mailflow.cases.machine_terms import (
    ACTORS,
    DISPOSITIONS,
    ENGINE_EVENTS,
    GUARDS,
    REQUIRED_ENGINE_EVENTS,
    Effect,
    GuardContext,
    MachineDefinition,
    StateDef,
    TransitionDef,
    TransitionResult,
)
from mailflow.errors import DefinitionError, MailflowError
from mailflow.yamlsource import load_yaml

__all__ = [  # the machine vocabulary stays importable from here (mailflow.cases.machine_terms)
    "ACTORS",
    "DISPOSITIONS",
    "ENGINE_EVENTS",
    "GUARDS",
    "REQUIRED_ENGINE_EVENTS",
    "Effect",
    "GuardContext",
    "IllegalTransition",
    "Lifecycle",
    "MachineDefinition",
    "StateDef",
    "TransitionDef",
    "TransitionResult",
    "build_lifecycles",
    "load_machine",
    "load_machines",
    "to_mermaid",
]


class IllegalTransition(MailflowError):
    """An event that the case's current state (or its guards) does not allow."""

    def __init__(self, event: str, state: str, failed_guards: Iterable[str] = ()) -> None:
        self.event, self.state, self.failed_guards = event, state, tuple(failed_guards)
        message = f"El evento {event} no está permitido en el estado {state}"
        if self.failed_guards:
            message += f" (no se cumple: {', '.join(self.failed_guards)})"
        super().__init__(message)


class Lifecycle:
    """Fires events of one definition on unbound case objects through one shared `Machine`."""

    def __init__(self, definition: MachineDefinition, attribute: str = "state") -> None:
        self.definition = definition
        self.attribute = attribute
        self._finals = {s.name for s in definition.states if s.final}
        self.machine = Machine(
            model=None,
            states=[{"name": s.name, "final": s.final} for s in definition.states],
            initial=definition.initial,
            transitions=[_machine_transition(t) for t in definition.transitions],
            model_attribute=attribute,
            auto_transitions=False,
            send_event=True,
            name=definition.id,
        )

    def fire(self, obj: Any, event: str, *, context: GuardContext) -> TransitionResult:
        """Move `obj` (which has a state attribute) by `event`, or raise IllegalTransition."""
        source = getattr(obj, self.attribute)
        handler = self.machine.events.get(event)
        if handler is None or source not in handler.transitions:
            raise IllegalTransition(event, str(source))
        fired: list[TransitionDef] = []
        if not handler.trigger(obj, context=context, fired=fired):
            raise IllegalTransition(event, source, self._failed_guards(source, event, context))
        done = fired[-1]
        dest = getattr(obj, self.attribute)
        return TransitionResult(event, source, dest, done.effects, done, dest in self._finals)

    def _failed_guards(self, state: str, event: str, ctx: GuardContext) -> list[str]:
        failed: dict[str, None] = {}
        for t in self.definition.transitions:
            if t.event == event and state in t.sources:
                if not t.allows(ctx.actor):
                    failed[f"actor {t.actor}"] = None
                failed.update((g, None) for g in t.guards if not GUARDS[g](ctx))
        return list(failed)


def _check(guards: tuple[str, ...], actor: str, data: EventData) -> bool:
    ctx: GuardContext = data.kwargs["context"]
    if actor != "any" and ctx.actor != actor:
        return False
    return all(GUARDS[g](ctx) for g in guards)


def _record(transition: TransitionDef, data: EventData) -> None:
    data.kwargs["fired"].append(transition)


def _machine_transition(t: TransitionDef) -> dict[str, Any]:
    return {
        "trigger": t.event,
        "source": list(t.sources),
        "dest": t.dest,
        "conditions": [partial(_check, t.guards, t.actor)],
        "after": [partial(_record, t)],
    }


def build_lifecycles(definitions: dict[str, MachineDefinition]) -> dict[str, Lifecycle]:
    """One Lifecycle per definition, keyed by id."""
    return {key: Lifecycle(defn) for key, defn in definitions.items()}


def to_mermaid(defn: MachineDefinition) -> str:
    """A Mermaid `stateDiagram-v2` of the definition, for staff documentation."""
    out = ["stateDiagram-v2", f"    [*] --> {defn.initial}"]
    out += [f'    state "{_clean(s.label)}" as {s.name}' for s in defn.states]
    for t in defn.transitions:
        text = _clean(t.label or t.event)
        if t.guards:
            text += f" [{', '.join(t.guards)}]"
        out += [f"    {src} --> {t.dest}: {text}" for src in t.sources]
    out += [f"    {s.name} --> [*]" for s in defn.states if s.final]
    return "\n".join(out) + "\n"


def _clean(text: str) -> str:
    return re.sub(r'[:;"#{}\n]', " ", text).strip()


def load_machines(directory: Path, templates_dir: Path) -> dict[str, MachineDefinition]:
    """Load and validate every `*.yaml` in `directory`; raise DefinitionError on any problem."""
    found: dict[str, MachineDefinition] = {}
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise DefinitionError(f"{directory}: no hay definiciones de ciclo de vida (*.yaml)")
    for path in files:
        defn = load_machine(path, templates_dir)
        if defn.id in found:
            raise DefinitionError(
                f"{path}:1: el id {defn.id!r} ya está definido en {found[defn.id].path}"
            )
        found[defn.id] = defn
    return found


def load_machine(path: Path, templates_dir: Path) -> MachineDefinition:
    """Load and validate one definition file; every problem is reported as `file:line: ...`."""
    return check_definition(load_yaml(path), templates_dir)
