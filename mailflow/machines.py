"""Case lifecycles as data: load, validate and run `state_machines/*.yaml` with `transitions`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from transitions import EventData, Machine

from mailflow.errors import DefinitionError, MailflowError
from mailflow.vocabulary import STATE_DISPOSITIONS, SignatureStatus
from mailflow.yamlsource import load_yaml

ACTORS = ("system", "staff", "any")
SLA_MODES = ("running", "paused", "stopped")
ENGINE_EVENTS: dict[str, str] = {
    "new_request": "una solicitud nueva fue evaluada (requisitos, firma, política)",
    "to_review": "la solicitud no puede decidirse sola y va al personal",
    "follow_up": "el solicitante respondió a una observación",
    "subsanacion_expired": "venció el plazo de subsanación",
    "delivery_accepted": "el servidor de correo aceptó el producto enviado",
    "inform": "el trámite se atiende por otro canal: se informa",
}
"""The closed vocabulary of `events:`: what the engine fires, named by each machine's YAML."""
REQUIRED_ENGINE_EVENTS = ("new_request", "inform")  # at least one: how a request enters
DISPOSITIONS = STATE_DISPOSITIONS
"""What a state means for the message that led to it (the inbox row's disposition)."""
REASON_MODES = ("required", "optional")
TOP_KEYS = {"id", "version", "description", "initial", "states", "transitions", "events"}
STATE_KEYS = {"name", "label", "final", "sla", "disposition", "queue"}
TRANSITION_KEYS = {"event", "source", "dest", "guard", "effects", "label", "actor", "reason"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class GuardContext:
    """What the caller knows about the case when firing an event; guards only read it.

    `signature_status` is one of valid/untrusted/invalid/unsigned/absent; `documents` are the
    document kinds the procedure's rule issues (e.g. {"oficio", "autorizacion_viaje"}).
    """

    actor: str = "system"
    requirements_complete: bool = False
    signature_required: bool = False
    signature_status: str = SignatureStatus.ABSENT  # a SignatureStatus value
    extemporaneo: bool = False
    subsanacion_expired: bool = False
    documents: frozenset[str] = frozenset()
    issue_automatic: bool = False
    registered_sender: bool = False
    signature_accepted: bool | None = None  # intake's judgement (checks.signature_accepted)
    escrito_presented: bool = False  # the request came as an escrito (PDF), signed or not
    cargo_issued: bool = False  # a cargo was already issued for this case


def _signature_ok(ctx: GuardContext) -> bool:
    if not ctx.signature_required:
        return True
    if ctx.signature_accepted is not None:
        return ctx.signature_accepted
    return ctx.signature_status == SignatureStatus.VALID


GUARDS: dict[str, Callable[[GuardContext], bool]] = {
    "requirements_complete": lambda ctx: ctx.requirements_complete,
    "requirements_missing": lambda ctx: not ctx.requirements_complete,
    "signature_valid": _signature_ok,
    "signature_not_valid": lambda ctx: not _signature_ok(ctx),
    "is_extemporaneo": lambda ctx: ctx.extemporaneo,
    "not_extemporaneo": lambda ctx: not ctx.extemporaneo,
    "staff_only": lambda ctx: ctx.actor == "staff",
    "subsanacion_window_open": lambda ctx: not ctx.subsanacion_expired,
    "subsanacion_window_expired": lambda ctx: ctx.subsanacion_expired,
    "issues_autorizacion_viaje": lambda ctx: "autorizacion_viaje" in ctx.documents,
    "emision_automatica": lambda ctx: ctx.issue_automatic,
    "emision_con_aprobacion": lambda ctx: not ctx.issue_automatic,
    "remitente_registrado": lambda ctx: ctx.registered_sender,
    "escrito_presented": lambda ctx: ctx.escrito_presented,
    "cargo_pending": lambda ctx: not ctx.cargo_issued,
    "cargo_issued": lambda ctx: ctx.cargo_issued,
}
"""The closed guard vocabulary (`signature_valid` also holds when no signature is required)."""


@dataclass(frozen=True)
class StateDef:
    """One state of a lifecycle; `sla` says whether the deadline clock runs while in it."""

    name: str
    label: str
    final: bool = False
    sla: str | None = None
    line: int = 0
    disposition: str = "accept"  # one of DISPOSITIONS
    queue: bool = False  # whether cases in this state wait in the staff queue


@dataclass(frozen=True)
class Effect:
    """One effect to perform after a transition (`kind` from the closed vocabulary)."""

    kind: str
    arg: str | None = None


@dataclass(frozen=True)
class TransitionDef:
    """One `transitions:` entry, with `*` expanded to the non-final states."""

    event: str
    sources: tuple[str, ...]
    dest: str
    guards: tuple[str, ...] = ()
    effects: tuple[Effect, ...] = ()
    label: str | None = None
    actor: str = "any"
    line: int = 0
    reason_required: bool = False

    def allows(self, actor: str) -> bool:
        """Whether `actor` (system or staff) may fire this transition at all."""
        if "staff_only" in self.guards and actor != "staff":
            return False
        return self.actor == "any" or self.actor == actor


@dataclass(frozen=True)
class MachineDefinition:
    """A validated lifecycle definition read from one YAML file."""

    id: str
    version: int
    description: str
    initial: str
    states: tuple[StateDef, ...]
    transitions: tuple[TransitionDef, ...]
    path: Path = field(default=Path(), compare=False)
    engine_events: tuple[tuple[str, str], ...] = ()  # (ENGINE_EVENTS key, event name)

    def event_for(self, role: str) -> str | None:
        """The event this machine fires for an engine role (ENGINE_EVENTS), or None."""
        return dict(self.engine_events).get(role)

    @property
    def queue_states(self) -> tuple[str, ...]:
        """States whose cases wait in the staff queue (`queue: true`)."""
        return tuple(s.name for s in self.states if s.queue)

    def needs_reason(self, state: str, event: str) -> bool:
        """Whether firing `event` from `state` requires a reason (`reason: required`)."""
        return any(
            t.reason_required for t in self.transitions if t.event == event and state in t.sources
        )

    @property
    def events(self) -> tuple[str, ...]:
        """Event names in order of first appearance."""
        return tuple(dict.fromkeys(t.event for t in self.transitions))

    def state(self, name: str) -> StateDef:
        """The state called `name` (KeyError if there is none)."""
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    def is_final(self, state: str) -> bool:
        """Whether `state` ends the case."""
        return self.state(state).final

    def allowed_events(self, state: str, actor: str = "any") -> list[TransitionDef]:
        """Transitions leaving `state` that `actor` may fire (guards are not evaluated here)."""
        return [
            t
            for t in self.transitions
            if state in t.sources and (actor == "any" or t.allows(actor))
        ]


class IllegalTransition(MailflowError):
    """An event that the case's current state (or its guards) does not allow."""

    def __init__(self, event: str, state: str, failed_guards: Iterable[str] = ()) -> None:
        self.event, self.state, self.failed_guards = event, state, tuple(failed_guards)
        message = f"El evento {event} no está permitido en el estado {state}"
        if self.failed_guards:
            message += f" (no se cumple: {', '.join(self.failed_guards)})"
        super().__init__(message)


@dataclass(frozen=True)
class TransitionResult:
    """What a fired event did: the move and the effects still to perform."""

    event: str
    source: str
    dest: str
    effects: tuple[Effect, ...]
    transition: TransitionDef
    final: bool


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
    from mailflow.machine_check import check_definition

    return check_definition(load_yaml(path), templates_dir)
