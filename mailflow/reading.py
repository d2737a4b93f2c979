"""Reading one message before any write: parse and intake decision under a per-message budget."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailflow.budget import Budget, run_within
from mailflow.decision import Decision
from mailflow.message import ParsedMessage
from mailflow.parse import parse_message

if TYPE_CHECKING:
    from mailflow.app import App


@dataclass(frozen=True)
class Reading:
    """What reading a message found, computed outside any database transaction.

    `msg` is the parsed message (None when the budget ran out while parsing); `decision` is
    intake's decision for it read as `subject` (the message's own subject when None);
    `exceeded` says in Spanish why the message must go to staff unread.
    """

    msg: ParsedMessage | None
    decision: Decision | None = None
    subject: str | None = None
    exceeded: str | None = None
    seconds: float = 0.0

    def decision_for(self, subject: str | None) -> Decision | None:
        """The precomputed decision when it was made for `subject`, else None."""
        return self.decision if self.subject == subject else None


def budget_of(app: App) -> Budget:
    """The per-message CPU budget of `limits.decide_cpu_seconds`."""
    return Budget(app.settings.limits.decide_cpu_seconds)


def parse_raw(app: App, raw: bytes) -> ParsedMessage:
    """Parse `raw` with the configured limits (no budget: the caller bounds it)."""
    limits = app.settings.limits
    return parse_message(
        raw,
        max_parts=limits.max_parts,
        max_attachment_bytes=limits.max_attachment_bytes,
        max_text_chars=limits.max_text_chars,
    )


def read_message(app: App, raw: bytes, budget: Budget | None = None) -> Reading:
    """Parse `raw` in a child process under `budget` (default: the configured one).

    Returns a Reading with `msg` set, or with `exceeded` when the child ran out of CPU time
    or memory. The parsed message keeps `raw` (the child does not send it back).
    """
    budget = budget or budget_of(app)

    def parse() -> ParsedMessage:
        return dataclasses.replace(parse_raw(app, raw), raw=b"")

    done = run_within(parse, budget)
    if done.value is None:
        return Reading(None, exceeded=_reason(done.exceeded), seconds=done.seconds)
    return Reading(dataclasses.replace(done.value, raw=raw), seconds=done.seconds)


def decide_within(
    app: App,
    reading: Reading,
    received: dt.datetime,
    subject: str | None = None,
    budget: Budget | None = None,
) -> Reading:
    """Add intake's decision on `reading.msg` (read as `subject` when given) under what is left
    of the budget; a reading that already ran out, or runs out now, carries `exceeded`."""
    msg = reading.msg
    if msg is None:
        return reading
    budget = budget or budget_of(app)
    left = Budget(max(1.0, budget.cpu_seconds - reading.seconds), budget.memory_bytes)
    probe = msg if subject is None else dataclasses.replace(msg, subject=subject)
    intake = app.intake  # built here, in the parent, once: the child only uses it

    def decide() -> Decision:
        return intake.decide(probe, received=received)

    done = run_within(decide, left)
    seconds = reading.seconds + done.seconds
    if done.value is None:
        return dataclasses.replace(reading, exceeded=_reason(done.exceeded), seconds=seconds)
    return dataclasses.replace(reading, decision=done.value, subject=subject, seconds=seconds)


def decide_raw(app: App, raw: bytes, now: dt.datetime | None = None) -> Decision:
    """Parse and decide `raw` within the budget, as `mailflow check` does; never raises.

    The receipt time is the message's Date header, else `now`, else the current time. A
    message that exceeds the budget is decided "review" with the reason.
    """
    reading = read_message(app, raw)
    if reading.msg is None:
        return Decision("review", None, (reading.exceeded or "",))
    received = reading.msg.date or now or dt.datetime.now(dt.UTC)
    reading = decide_within(app, reading, received)
    if reading.decision is None:
        return Decision("review", None, (reading.exceeded or "",))
    return reading.decision


def _reason(exceeded: str | None) -> str:
    detail = exceeded or "el análisis no terminó"
    return f"Mensaje enviado al personal sin leer: {detail}; revíselo a mano"
