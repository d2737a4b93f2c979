"""Who handles a new case: assignment rules read from rules/assignment.yaml, validated at start-up.

The file declares the officers (desk usernames), teams of officers, and an ordered list of
rules; the first rule whose `tramite` and `office` match a case names its officer or team and,
for a team, the strategy that picks one member:

- `round_robin`: the member after the one this team received last (from the audit trail);
- `carga`: the member with the fewest open cases (ties: the first listed);
- an `officer:` rule assigns that person directly.

Every assignment and reassignment is an audit event (`kind="assign"`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from mailflow.errors import MailflowError
from mailflow.store.audit import record
from mailflow.store.bulkrows import kept_rows
from mailflow.store.models import Case, CaseEvent, User
from mailflow.store.txcache import flush_as_a_query_would, lookups
from mailflow.yamlsource import YamlSource, load_yaml, parse_yaml

ASSIGNMENT_FILE = "assignment.yaml"
_EVENTS = cast(Table, CaseEvent.__table__)
STRATEGIES = {"round_robin": "turno rotativo", "carga": "menor carga"}
_RULE_KEYS = {"name", "tramite", "office", "officer", "team", "strategy"}


@dataclass(frozen=True)
class Rule:
    """One line of the table: a case matching `tramites` and `offices` (empty: any) goes to
    `officer`, or to a member of `team` chosen by `strategy`. `where` is `file:line`."""

    name: str
    tramites: frozenset[str]
    offices: frozenset[str]
    officer: str | None
    team: str | None
    strategy: str
    where: str

    def matches(self, case: Case, default_office: str) -> bool:
        """Whether this rule applies to the case (None office: the default office)."""
        office = case.office or default_office
        return (not self.tramites or case.tramite in self.tramites) and (
            not self.offices or office in self.offices
        )

    def describe(self) -> str:
        """Spanish: "regla «recursos» (assignment.yaml:21): equipo recursos, turno rotativo"."""
        who = f"equipo {self.team}, {STRATEGIES[self.strategy]}" if self.team else "directa"
        return f"regla «{self.name}» ({self.where}): {who}"


@dataclass(frozen=True)
class AssignmentRules:
    """The whole file: officers, teams (name → usernames) and the ordered rules."""

    officers: tuple[str, ...] = ()
    teams: dict[str, tuple[str, ...]] | None = None
    rules: tuple[Rule, ...] = ()

    def rule_for(self, case: Case, default_office: str) -> Rule | None:
        """The first rule that matches the case, or None."""
        return next((r for r in self.rules if r.matches(case, default_office)), None)

    def members(self, rule: Rule) -> tuple[str, ...]:
        """The usernames a rule may choose from, in file order."""
        if rule.officer:
            return (rule.officer,)
        return (self.teams or {}).get(rule.team or "", ())


def load_assignment_rules(
    path: Path, tramites: Iterable[str], offices: Iterable[str]
) -> AssignmentRules:
    """Read and validate rules/assignment.yaml (a missing file: no automatic assignment).

    Raises `DefinitionError` (`file:line: message`) for an unknown officer, team, procedure,
    office or strategy, or a malformed entry.
    """
    if not path.exists():
        return AssignmentRules()
    return _build(load_yaml(path), set(tramites), set(offices))


def parse_assignment_rules(
    text: str, path: Path, tramites: Iterable[str], offices: Iterable[str]
) -> AssignmentRules:
    """Like `load_assignment_rules` for text already read (tests, policy check)."""
    return _build(parse_yaml(text, path), set(tramites), set(offices))


def _names(src: YamlSource, value: object, *keys: str | int) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v for v in items):
        raise src.error("se esperaba un nombre o una lista de nombres", *keys)
    return [str(v) for v in items]


def _build(src: YamlSource, tramites: set[str], offices: set[str]) -> AssignmentRules:
    data = src.data if src.data is not None else {}
    if not isinstance(data, dict):
        raise src.error("el archivo debe ser un mapa con officers, teams y rules")
    for key in data:
        if key not in ("officers", "teams", "rules"):
            raise src.error(f"sección desconocida {key!r} (use officers, teams, rules)", key)
    officers = _names(src, data.get("officers") or [], "officers")
    teams: dict[str, tuple[str, ...]] = {}
    raw_teams = data.get("teams") or {}
    if not isinstance(raw_teams, dict):
        raise src.error("teams debe ser un mapa: nombre del equipo → lista de usuarios", "teams")
    for team, members in raw_teams.items():
        names = _names(src, members, "teams", team)
        for i, name in enumerate(names):
            if name not in officers:
                where = ("teams", team, i) if isinstance(members, list) else ("teams", team)
                raise src.error(f"funcionario desconocido {name!r} (no está en officers)", *where)
        teams[str(team)] = tuple(names)
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise src.error("rules debe ser una lista de reglas", "rules")
    rules = [
        _rule(src, i, item, officers, teams, tramites, offices) for i, item in enumerate(raw_rules)
    ]
    return AssignmentRules(tuple(officers), teams, tuple(rules))


def _rule(
    src: YamlSource,
    i: int,
    item: object,
    officers: list[str],
    teams: dict[str, tuple[str, ...]],
    tramites: set[str],
    offices: set[str],
) -> Rule:
    at: tuple[str | int, ...] = ("rules", i)
    if not isinstance(item, dict):
        raise src.error("cada regla debe ser un mapa (tramite, office, officer o team)", *at)
    for key in item:
        if key not in _RULE_KEYS:
            raise src.error(
                f"clave desconocida {key!r} (use {', '.join(sorted(_RULE_KEYS))})", *at, key
            )
    wanted = _names(src, item["tramite"], *at, "tramite") if "tramite" in item else []
    for t in wanted:
        if t not in tramites:
            raise src.error(f"procedimiento desconocido {t!r}", *at, "tramite")
    places = _names(src, item["office"], *at, "office") if "office" in item else []
    for o in places:
        if o not in offices:
            raise src.error(f"oficina desconocida {o!r} (no está en calendar.yaml)", *at, "office")
    officer, team = item.get("officer"), item.get("team")
    if (officer is None) == (team is None):
        raise src.error("cada regla indica officer o team (uno de los dos)", *at)
    if officer is not None and officer not in officers:
        raise src.error(
            f"funcionario desconocido {officer!r} (no está en officers)", *at, "officer"
        )
    if team is not None and team not in teams:
        raise src.error(f"equipo desconocido {team!r}", *at, "team")
    strategy = str(item.get("strategy", "round_robin"))
    if strategy not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise src.error(f"estrategia desconocida {strategy!r} (use {known})", *at, "strategy")
    return Rule(
        name=str(item.get("name") or f"regla {i + 1}"),
        tramites=frozenset(wanted),
        offices=frozenset(places),
        officer=str(officer) if officer is not None else None,
        team=str(team) if team is not None else None,
        strategy=strategy,
        where=f"{src.path.name}:{src.line(*at)}",
    )


class AssignmentError(MailflowError):
    """A reassignment that cannot be done (unknown or inactive user)."""


def choose(session: Session, rules: AssignmentRules, rule: Rule) -> User | None:
    """The active desk user the rule picks now, or None when no member is an active account."""
    names = rules.members(rule)
    users = _active_accounts(session, names)
    candidates = [users[n] for n in names if n in users]
    if not candidates:
        return None
    if rule.strategy == "carga" or rule.officer:
        loads = dict(
            session.execute(
                select(Case.assignee_id, func.count())
                .where(Case.assignee_id.in_([u.id for u in candidates]), Case.closed_at.is_(None))
                .group_by(Case.assignee_id)
            ).all()
        )
        return min(candidates, key=lambda u: loads.get(u.id, 0))
    previous = _last_chosen(session, rule)
    order = [u.username for u in candidates]
    index = (order.index(previous) + 1) % len(order) if previous in order else 0
    return candidates[index]


def _active_accounts(session: Session, names: tuple[str, ...]) -> dict[str, User]:
    """The active desk accounts among `names`, by username. Asked once per transaction while
    it writes no account (`txcache.lookups`): the desk accounts of a rule's team are the same
    for every case of a batch."""
    known = lookups(session, User)
    hit: dict[str, User] | None = known.get(names) if known is not None else None
    if hit is not None and all(u in session for u in hit.values()):
        flush_as_a_query_would(session)
        return dict(hit)
    stmt = select(User).where(User.username.in_(names), User.active)
    users = {u.username: u for u in session.scalars(stmt)}
    if known is not None:
        known[names] = dict(users)
    return users


def _last_chosen(session: Session, rule: Rule) -> str:
    """The username `rule`'s latest assignment chose ("" when it has none, or its latest found
    no one available): this transaction's own latest (`record(kept=True)`), else the audit
    trail's."""
    event = f"regla:{rule.name}"
    mine = [r for r in kept_rows(session, _EVENTS, "event", event) if r["kind"] == "assign"]
    if mine:
        flush_as_a_query_would(session)  # as the query of the audit trail did
        return str((mine[-1]["data"] or {}).get("username", ""))
    last = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.kind == "assign", CaseEvent.event == event)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    ).first()
    return str((last.data or {}).get("username", "")) if last is not None else ""


def assign_new_case(
    session: Session,
    rules: AssignmentRules,
    case: Case,
    *,
    default_office: str,
    now: dt.datetime,
    actor: str,
) -> User | None:
    """Assign a case that has no assignee yet by the first matching rule; audited either way.

    Returns the chosen user, or None (no rule matches, or no member is an active account; the
    case then stays with the whole desk and the audit trail says why). In the caller's
    transaction.
    """
    if case.assignee_id is not None or not rules.rules:
        return None  # already assigned, or no assignment configured
    rule = rules.rule_for(case, default_office)
    if rule is None:
        record(
            session, "assign", "Ninguna regla de asignación coincide: el expediente queda para "
            "toda la mesa de partes.", at=now, actor=actor, case_id=case.id, data={},
        )  # fmt: skip
        return None
    user = choose(session, rules, rule)
    if user is None:
        record(
            session, "assign", f"Sin responsable disponible según la {rule.describe()}.",
            at=now, actor=actor, case_id=case.id, event=f"regla:{rule.name}",
            data={"rule": rule.name, "where": rule.where}, kept=True,
        )  # fmt: skip
        return None
    case.assignee_id = user.id
    record(
        session, "assign", f"Asignado a {user.full_name} por la {rule.describe()}.",
        at=now, actor=actor, case_id=case.id, event=f"regla:{rule.name}",
        data={"username": user.username, "rule": rule.name, "where": rule.where}, kept=True,
    )  # fmt: skip
    return user


def reassign(
    session: Session, case: Case, username: str, *, now: dt.datetime, actor: str, reason: str
) -> User:
    """Give the case to another active account (a manager's action), audited with its reason.

    Raises AssignmentError for an unknown or inactive username. In the caller's transaction.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise AssignmentError(f"no existe un usuario activo {username!r}")
    before = session.get(User, case.assignee_id) if case.assignee_id else None
    case.assignee_id = user.id
    was = before.full_name if before else "sin responsable"
    text = f"Reasignado de {was} a {user.full_name}." + (f" Motivo: {reason}" if reason else "")
    record(
        session, "assign", text, at=now, actor=actor, case_id=case.id, event="reasignar",
        data={"username": user.username, "from": before.username if before else None},
    )  # fmt: skip
    return user


def assignee_names(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    """Full names of the given user ids (for lists)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(wanted))).all())
