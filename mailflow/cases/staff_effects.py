"""Staff routing effects: flag a case, assign it to a person, notify a role."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mailflow.cases.effect_run import EffectRun, audit
from mailflow.store.models import Case

if TYPE_CHECKING:
    from mailflow.cases.machine_terms import Effect


def add_flag(case: Case, flag: str) -> None:
    """Add one flag to a case (kept once)."""
    if flag not in (case.flags or []):
        case.flags = [*(case.flags or []), flag]


def add_flags(case: Case, flags: Sequence[str]) -> None:
    """Add flags to a case, keeping order and uniqueness."""
    for flag in flags:
        add_flag(case, flag)


def _flag(run: EffectRun, effect: Effect) -> None:
    add_flag(run.case, str(effect.arg))
    audit(run, "flag", f"Marca: {effect.arg}", {"flag": effect.arg})


def _assign(run: EffectRun, _: Effect) -> None:
    """Route the case to a person by rules/assignment.yaml (once) and re-read its signals."""
    from mailflow.cases import assignment, priority

    app, case = run.app, run.case
    # the new mail may declare more (nothing new when it is the one that opened the case)
    priority.recheck_signals(run.session, app, case, run.now, run.given.inbox_message_id)
    office = app.settings.calendar.default_office
    if case.assignee_id is None and app.assignment_rules.rule_for(case, office) is not None:
        assignment.assign_new_case(
            run.session,
            app.assignment_rules,
            case,
            default_office=office,
            now=run.now,
            actor=run.given.actor,
        )


def _notify(run: EffectRun, effect: Effect) -> None:
    who = {"staff": "mesa de partes", "manager": "jefatura", "admin": "administración"}
    audit(run, "notify", f"Aviso a: {who.get(str(effect.arg), effect.arg)}", {"role": effect.arg})


HANDLERS: dict[str, Callable[[EffectRun, Effect], None]] = {
    "flag": _flag,
    "assign": _assign,
    "notify": _notify,
}
"""This module's handlers by effect name."""
