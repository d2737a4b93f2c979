"""Validation of lifecycle definitions: every problem reported as `file:line: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailflow.cases.effect_registry import EFFECTS
from mailflow.cases.machine_terms import (
    ACTORS,
    DISPOSITIONS,
    ENGINE_EVENTS,
    GUARDS,
    NAME_PATTERN,
    REASON_MODES,
    REQUIRED_ENGINE_EVENTS,
    SLA_MODES,
    STATE_KEYS,
    TOP_KEYS,
    TRANSITION_KEYS,
    Effect,
    MachineDefinition,
    StateDef,
    TransitionDef,
)
from mailflow.errors import DefinitionError
from mailflow.yamlsource import Key, YamlSource

_ENGINE_HELP = "se admiten: " + ", ".join(ENGINE_EVENTS)
PLAIN_EFFECTS = tuple(k for k, spec in EFFECTS.items() if spec.arg is None)
ARG_EFFECTS = tuple(k for k, spec in EFFECTS.items() if spec.arg is not None)
_EFFECTS_HELP = (
    f"se admiten: {', '.join(PLAIN_EFFECTS)} y {', '.join(f'{k}: <valor>' for k in ARG_EFFECTS)}"
)


def check_definition(src: YamlSource, templates_dir: Path) -> MachineDefinition:
    """The definition in `src`, or DefinitionError listing every problem found."""
    checker = _Checker(src, templates_dir)
    defn = checker.definition()
    if checker.errors or defn is None:
        raise DefinitionError("\n".join(checker.errors))
    return defn


class _Checker:
    """Collects every problem of one definition, structural first, then graph checks."""

    def __init__(self, src: YamlSource, templates_dir: Path) -> None:
        self.src, self.templates_dir = src, templates_dir
        self.errors: list[str] = []

    def fail(self, message: str, *keys: Key) -> None:
        self.errors.append(f"{self.src.where(*keys)}: {message}")

    def definition(self) -> MachineDefinition | None:
        data = self.src.data
        if not isinstance(data, dict):
            self.fail(
                "la definición debe ser un mapa con id, version, initial, states, transitions"
            )
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.fail(
                    f"clave desconocida {key!r}; se admiten: {', '.join(sorted(TOP_KEYS))}", key
                )
        for key in sorted(TOP_KEYS - {"description", "events"} - set(data)):
            self.fail(f"falta la clave obligatoria {key!r}")
        version = data.get("version")
        if "version" in data and (type(version) is not int or version < 1):
            self.fail(f"version debe ser un entero positivo, no {version!r}", "version")
        ident = self.name(data["id"], "id", "id") if "id" in data else ""
        description = data.get("description", "")
        if not isinstance(description, str):
            self.fail("description debe ser un texto", "description")
        states = self.states(data.get("states"))
        names = list(dict.fromkeys(s.name for s in states))
        initial = data.get("initial")
        if "initial" in data and initial not in names:
            self.fail(f"el estado inicial {initial!r} no está entre los estados", "initial")
        finals = {s.name for s in states if s.final}
        transitions = self.transitions(data.get("transitions"), names, finals)
        engine = self.engine_events(data.get("events"), {t.event for t in transitions})
        if self.errors or not isinstance(version, int) or not isinstance(initial, str):
            return None
        defn = MachineDefinition(
            ident,
            version,
            description,
            initial,
            tuple(states),
            tuple(transitions),
            self.src.path,
            tuple(engine.items()),
        )
        self.graph(defn)
        return defn

    def engine_events(self, value: object, events: set[str]) -> dict[str, str]:
        """`events:` maps what the engine fires (ENGINE_EVENTS) to this machine's events."""
        if value is None:
            self.fail(f"falta la clave obligatoria 'events' ({_ENGINE_HELP})")
            return {}
        raw = self.mapping(value, set(ENGINE_EVENTS), "events")
        out: dict[str, str] = {}
        for role, event in raw.items():
            if role not in ENGINE_EVENTS:
                continue
            if event not in events:
                self.fail(
                    f"events.{role}: el evento {event!r} no tiene transiciones en esta máquina",
                    "events",
                    role,
                )
                continue
            out[role] = str(event)
        if not any(role in raw for role in REQUIRED_ENGINE_EVENTS):
            wanted = " o ".join(REQUIRED_ENGINE_EVENTS)
            self.fail(f"events: falta {wanted} (cómo entra una solicitud nueva)", "events")
        return out

    def name(self, value: object, what: str, *keys: Key) -> str:
        if isinstance(value, str) and NAME_PATTERN.match(value):
            return value
        self.fail(f"{what} debe ser un nombre en minúsculas_con_guiones_bajos, no {value!r}", *keys)
        return ""

    def mapping(self, value: object, allowed: set[str], *keys: Key) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail("se esperaba un mapa", *keys)
            return {}
        for key in value:
            if key not in allowed:
                self.fail(
                    f"clave desconocida {key!r}; se admiten: {', '.join(sorted(allowed))}",
                    *keys,
                    key,
                )
        return value

    def listing(self, value: object, key: str) -> list[Any]:
        if isinstance(value, list) and value:
            return value
        if value is not None:
            self.fail(f"{key} debe ser una lista no vacía", key)
        return []

    def states(self, value: object) -> list[StateDef]:
        result: list[StateDef] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.listing(value, "states")):
            raw = self.mapping(item, STATE_KEYS, "states", i)
            name = self.name(raw.get("name"), "el nombre del estado", "states", i, "name")
            line = self.src.line("states", i)
            if name in seen:
                self.fail(
                    f"estado duplicado {name!r} (ya definido en la línea {seen[name]})",
                    "states",
                    i,
                    "name",
                )
            seen.setdefault(name, line)
            label = raw.get("label")
            if not isinstance(label, str) or not label.strip():
                self.fail(
                    f"el estado {name!r} necesita un label (texto en castellano)", "states", i
                )
            final = raw.get("final", False)
            if not isinstance(final, bool):
                self.fail("final debe ser true o false", "states", i, "final")
            sla = raw.get("sla")
            if sla is not None and sla not in SLA_MODES:
                self.fail(
                    f"sla desconocido {sla!r}; se admiten: {', '.join(SLA_MODES)}",
                    "states",
                    i,
                    "sla",
                )
            disposition = raw.get("disposition", "accept")
            if disposition not in DISPOSITIONS:
                self.fail(
                    f"disposition desconocida {disposition!r}; se admiten: "
                    f"{', '.join(DISPOSITIONS)}",
                    "states",
                    i,
                    "disposition",
                )
            queue = raw.get("queue", False)
            if not isinstance(queue, bool):
                self.fail("queue debe ser true o false", "states", i, "queue")
            result.append(
                StateDef(
                    name, str(label), final is True, sla, line, str(disposition), queue is True
                )
            )
        return result

    def transitions(self, value: object, names: list[str], finals: set[str]) -> list[TransitionDef]:
        result: list[TransitionDef] = []
        for i, item in enumerate(self.listing(value, "transitions")):
            at: tuple[Key, ...] = ("transitions", i)
            raw = self.mapping(item, TRANSITION_KEYS, *at)
            for key in ("event", "source", "dest"):
                if raw and key not in raw:
                    self.fail(f"a la transición le falta {key!r}", *at)
            event = self.name(raw.get("event"), "el evento", *at, "event")
            if event == "state":
                self.fail("el evento no puede llamarse 'state'", *at, "event")
            sources = self.sources(raw.get("source"), names, finals, at)
            dest = raw.get("dest")
            if "dest" in raw and dest not in names:
                self.fail(f"estado de destino desconocido {dest!r}", *at, "dest")
            guards = raw.get("guard", [])
            guards = [guards] if isinstance(guards, str) else guards
            if not isinstance(guards, list):
                self.fail("guard debe ser un nombre o una lista de nombres", *at, "guard")
                guards = []
            for guard in guards:
                if guard not in GUARDS:
                    self.fail(
                        f"guarda desconocida {guard!r}; se admiten: {', '.join(GUARDS)}",
                        *at,
                        "guard",
                    )
            actor = raw.get("actor", "any")
            if actor not in ACTORS:
                self.fail(
                    f"actor desconocido {actor!r}; se admiten: {', '.join(ACTORS)}", *at, "actor"
                )
            label = raw.get("label")
            if label is not None and not isinstance(label, str):
                self.fail("label debe ser un texto", *at, "label")
            effects = self.effects(raw.get("effects", []), at)
            reason = raw.get("reason", "optional")
            if reason not in REASON_MODES:
                self.fail(
                    f"reason desconocido {reason!r}; se admiten: {', '.join(REASON_MODES)}",
                    *at,
                    "reason",
                )
            line = self.src.line(*at)
            result.append(
                TransitionDef(
                    event,
                    sources,
                    str(dest),
                    tuple(guards),
                    effects,
                    label,
                    str(actor),
                    line,
                    reason == "required",
                )
            )
        return result

    def sources(
        self, value: object, names: list[str], finals: set[str], at: tuple[Key, ...]
    ) -> tuple[str, ...]:
        if value == "*":
            return tuple(n for n in names if n not in finals)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.fail("source debe ser un estado, una lista de estados o '*'", *at, "source")
            return ()
        for item in items:
            if item not in names:
                self.fail(f"estado de origen desconocido {item!r}", *at, "source")
            elif item in finals:
                self.fail(
                    f"el estado final {item!r} no puede tener transiciones de salida", *at, "source"
                )
        return tuple(str(item) for item in items)

    def effects(self, value: object, at: tuple[Key, ...]) -> tuple[Effect, ...]:
        if not isinstance(value, list):
            self.fail("effects debe ser una lista", *at, "effects")
            return ()
        result = []
        for j, item in enumerate(value):
            where = (*at, "effects", j)
            if isinstance(item, str) and item in PLAIN_EFFECTS:
                result.append(Effect(item))
            elif isinstance(item, dict) and len(item) == 1:
                kind, arg = next(iter(item.items()))
                if kind in ARG_EFFECTS and self.effect_arg(kind, arg, where):
                    result.append(Effect(kind, arg))
                elif kind not in ARG_EFFECTS:
                    self.fail(f"efecto desconocido {kind!r}; {_EFFECTS_HELP}", *where)
            else:
                self.fail(f"efecto desconocido {item!r}; {_EFFECTS_HELP}", *where)
        return tuple(result)

    def effect_arg(self, kind: str, arg: object, where: tuple[Key, ...]) -> bool:
        rule = EFFECTS[kind].arg
        allowed = rule if isinstance(rule, tuple) else None
        if allowed is not None and arg not in allowed:
            self.fail(
                f"{kind}: valor desconocido {arg!r}; se admiten: {', '.join(allowed)}", *where
            )
            return False
        if not isinstance(arg, str) or not NAME_PATTERN.match(arg):
            self.fail(f"{kind}: se esperaba un nombre, no {arg!r}", *where)
            return False
        template = self.templates_dir / "replies" / f"{arg}.txt.j2"
        if rule == "reply_template" and not template.is_file():
            self.fail(f"send_reply: no existe la plantilla {template}", *where)
            return False
        return True

    def graph(self, defn: MachineDefinition) -> None:
        reached = _closure({defn.initial}, [(t.sources, t.dest) for t in defn.transitions])
        ends = _closure(
            {s.name for s in defn.states if s.final},
            [((t.dest,), s) for t in defn.transitions for s in t.sources],
        )
        for i, state in enumerate(defn.states):
            if state.name not in reached:
                self.fail(
                    f"el estado {state.name!r} no es alcanzable desde {defn.initial!r}", "states", i
                )
            elif not state.final and not defn.allowed_events(state.name):
                self.fail(
                    f"el estado {state.name!r} no es final y no tiene transiciones de salida",
                    "states",
                    i,
                )
            elif state.name not in ends:
                self.fail(
                    f"desde el estado {state.name!r} no se llega a ningún estado final", "states", i
                )
        for i, later in enumerate(defn.transitions):
            for earlier in defn.transitions[:i]:
                shared = set(earlier.sources) & set(later.sources)
                if (
                    earlier.event == later.event
                    and shared
                    and set(earlier.guards) <= set(later.guards)
                    and earlier.actor in ("any", later.actor)
                ):
                    self.fail(
                        f"transición inalcanzable: la de la línea {earlier.line} ya atiende {later.event!r} desde {sorted(shared)[0]!r}",
                        "transitions",
                        i,
                    )
                    break


def _closure(start: set[str], edges: list[tuple[tuple[str, ...], str]]) -> set[str]:
    seen, grew = set(start), True
    while grew:
        grew = False
        for sources, dest in edges:
            if dest not in seen and seen & set(sources):
                seen.add(dest)
                grew = True
    return seen
