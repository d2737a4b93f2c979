"""The machine vocabulary: the closed names and shapes of a lifecycle definition.

Both sides import it: `machines` (which loads and runs definitions) and `machine_check`
(which validates them), so neither imports the other for its words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.vocabulary import STATE_DISPOSITIONS, SignatureStatus

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


@dataclass(frozen=True)
class TransitionResult:
    """What a fired event did: the move and the effects still to perform."""

    event: str
    source: str
    dest: str
    effects: tuple[Effect, ...]
    transition: TransitionDef
    final: bool
