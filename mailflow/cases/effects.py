"""Perform a transition's effects: replies into the outbox, documents, clocks, timers, flags.

The handlers live by noun: clock_effects (deadlines, timers), reply_effects (documents,
replies), staff_effects (flags, assignment, notices); effect_run holds what they share and
case_thread a case's mail thread. Their public names stay importable from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mailflow.cases import clock_effects, reply_effects, staff_effects
from mailflow.cases.case_thread import add_case_message, fresh_thread, thread_of
from mailflow.cases.clock_effects import CLOCK_TIMERS
from mailflow.cases.effect_registry import EFFECTS
from mailflow.cases.effect_run import EffectInput, EffectRun, audit
from mailflow.cases.reply_effects import (
    FILING_ROLES,
    FILING_TEMPLATES,
    MESES,
    REPLY_DOCUMENTS,
    case_documents,
    fecha_larga,
    replies_today,
    reply_context,
)
from mailflow.cases.staff_effects import add_flag, add_flags
from mailflow.store.models import Case, CaseEvent

if TYPE_CHECKING:
    from mailflow.app import App
    from mailflow.cases.machine_terms import Effect, TransitionResult

__all__ = [
    "CLOCK_TIMERS",
    "FILING_ROLES",
    "FILING_TEMPLATES",
    "HANDLERS",
    "MESES",
    "REPLY_DOCUMENTS",
    "EffectInput",
    "EffectRun",
    "add_case_message",
    "add_flag",
    "add_flags",
    "audit",
    "case_documents",
    "fecha_larga",
    "fresh_thread",
    "replies_today",
    "reply_context",
    "run_effects",
    "thread_of",
]


def run_effects(
    session: Session,
    app: App,
    case: Case,
    result: TransitionResult,
    event_row: CaseEvent,
    now: dt.datetime,
    given: EffectInput,
) -> EffectRun:
    """Run every effect of `result` in order, in the caller's transaction."""
    run = EffectRun(session, app, case, event_row, now, given)
    for effect in result.effects:
        EFFECTS[effect.kind].handler(run, effect)
    return run


HANDLERS: dict[str, Callable[[EffectRun, Effect], None]] = {
    **clock_effects.HANDLERS,
    **reply_effects.HANDLERS,
    **staff_effects.HANDLERS,
}
"""The handlers by effect name (effect_registry.EFFECTS adds argument checks)."""
