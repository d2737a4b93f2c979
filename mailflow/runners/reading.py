"""Reading one message before any write: parse and intake decision under a per-message budget."""

from __future__ import annotations

import datetime as dt
import email.header
import re
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from mailflow.cases.priority import ScannedText, scan_text
from mailflow.errors import NotNow
from mailflow.intake.decision import Decision
from mailflow.mail.authentication import from_problem
from mailflow.mail.headerguard import guard_headers
from mailflow.mail.message import ParsedMessage
from mailflow.mail.parse import parse_message
from mailflow.runners.budget import Budget
from mailflow.runners.sandbox import SandboxPool
from mailflow.triage.automatic import RuleHit, detect_automatic

if TYPE_CHECKING:
    from mailflow.app import App

_MSG_ID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Findings:
    """What the write phase asks of the message alone, worked out while reading it (in the
    child, so that the main thread does not): the automatic-mail rules that hit it
    (`triage.automatic.detect_automatic` with intake's own addresses and domain), why its
    From: is not exactly one mailbox (`mail.authentication.from_problem`; None when it is),
    and its subject and text scanned for vulnerability signals (`cases.priority.scan_text`)."""

    automatic: tuple[RuleHit, ...]
    from_problem: str | None
    signals: ScannedText


def findings_of(app: App, msg: ParsedMessage) -> Findings:
    """The Findings on `msg` (parsed with its `raw`) for `app`'s intake and vocabulary."""
    intake = app.intake
    hits = detect_automatic(msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain)
    signals = scan_text(app.vulnerability, msg.subject, msg.text)
    return Findings(tuple(hits), from_problem(msg), signals)


@dataclass(frozen=True)
class HeaderReading:
    """A message read from its top header block alone (`read_headers`): `msg` has its
    sender, subject and threading headers and no body; `automatic` the automatic-mail rules
    its headers trip (RFC 3834 Auto-Submitted, Precedence, null sender, X-Loop …); `from_problem`
    why its From: is not exactly one mailbox (None when it is)."""

    msg: ParsedMessage
    automatic: tuple[RuleHit, ...]
    from_problem: str | None


@dataclass(frozen=True)
class Reading:
    """What reading a message found, computed outside any database transaction.

    `msg` is the parsed message (None when the budget ran out); `decision` is intake's
    decision for it read as `subject` (the message's own subject when None), or None when no
    decision was asked for; `exceeded` says in Spanish why the message must go to staff;
    `found` the Findings on `msg` made while reading it (None: the write phase works them
    out itself). `headers` is, when the whole message could not be read, its top header block
    alone (`read_headers`), so that its sender can still be answered; None otherwise.
    """

    msg: ParsedMessage | None
    decision: Decision | None = None
    subject: str | None = None
    exceeded: str | None = None
    seconds: float = 0.0
    found: Findings | None = None
    headers: HeaderReading | None = None

    def decision_for(self, subject: str | None) -> Decision | None:
        """The precomputed decision when it was made for `subject`, else None."""
        return self.decision if self.subject == subject else None


@dataclass(frozen=True)
class DecideAs:
    """Which decision to make while reading: the subject to read the message under (None: its
    own) and the receipt time (None: the message's Date, else `fallback`)."""

    subject: str | None = None
    received: dt.datetime | None = None
    fallback: dt.datetime | None = None


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


class Reader:
    """Reads messages for one App in sandboxed child processes (`mailflow.runners.sandbox`), one task
    at a time per caller, each under the per-message budget `limits.decide_cpu_seconds`."""

    def __init__(self, app: App) -> None:
        # built here, in the parent, once: the children only use them (findings_of too)
        intake, _ = app.intake, app.vulnerability

        def work(task: tuple[str, Any]) -> Any:
            kind, payload = task
            if kind == "headers":
                return _header_reading(app, payload)
            if kind == "decide":
                probe, received = payload
                return intake.decide(probe, received=received)
            raw, decide = payload
            msg = parse_raw(app, raw)
            found = findings_of(app, msg)
            decision = None
            if decide is not None:
                received = decide.received or msg.date or decide.fallback
                received = received or dt.datetime.now(dt.UTC)
                probe = msg if decide.subject is None else replace(msg, subject=decide.subject)
                # under its own subject, the automatic-mail rules just checked apply as they are
                automatic = found.automatic if decide.subject is None else None
                decision = intake.decide(probe, received=received, automatic=automatic)
            return replace(msg, raw=b""), decision, found

        self.pool = SandboxPool(work, budget_of(app))


def read_message(app: App, raw: bytes, decide: DecideAs | None = None) -> Reading:
    """Parse `raw`, and make the decision `decide` asks for, in a sandboxed child under the
    per-message budget.

    Returns a Reading with `msg` (keeping `raw`, which the child does not send back), the
    decision and the Findings on `msg`, or with `exceeded` when the child ran out of CPU time
    or memory.
    """
    done = app.reader.pool.run(("read", (raw, decide)))
    if done.value is None:
        headers = read_headers(app, raw)
        return Reading(None, exceeded=_reason(done.exceeded), seconds=done.seconds, headers=headers)
    msg, decision, found = done.value
    subject = decide.subject if decide is not None else None
    return Reading(replace(msg, raw=raw), decision, subject, seconds=done.seconds, found=found)


def decide_within(
    app: App, reading: Reading, received: dt.datetime, subject: str | None = None
) -> Reading:
    """Add intake's decision on `reading.msg` (read as `subject` when given) in a sandboxed
    child under the budget; a reading that runs out carries `exceeded`."""
    msg = reading.msg
    if msg is None:
        return reading
    probe = msg if subject is None else replace(msg, subject=subject)
    done = app.reader.pool.run(("decide", (probe, received)))
    seconds = reading.seconds + done.seconds
    if done.value is None:
        return replace(reading, exceeded=_reason(done.exceeded), seconds=seconds)
    return replace(reading, decision=done.value, subject=subject, seconds=seconds)


def decide_raw(app: App, raw: bytes, now: dt.datetime | None = None) -> Decision:
    """Parse and decide `raw` within the budget, as `mailflow check` does; never raises.

    The receipt time is the message's Date header, else `now`, else the current time. A
    message that exceeds the budget is decided "review" with the reason.
    """
    try:
        reading = read_message(app, raw, DecideAs(fallback=now))
    except NotNow as exc:
        return Decision("review", None, (str(exc),))
    if reading.decision is None:
        return Decision("review", None, (reading.exceeded or "",))
    return reading.decision


def read_headers(app: App, raw: bytes) -> HeaderReading | None:
    """`raw`'s top header block alone (capped by the header guard) read in a sandboxed child
    under the per-message budget, for a message whose whole reading ran out of it: who sent
    it and whether its headers say it is automatic. None when even that fails or runs out.
    Raises errors.NotNow when no child can be started."""
    done = app.reader.pool.run(("headers", raw))
    value: HeaderReading | None = done.value
    return value


def _header_block(raw: bytes) -> bytes:
    """The top header block of `raw` after the header guard's caps (no body)."""
    return guard_headers(raw).raw.split(b"\n\r\n", 1)[0].split(b"\n\n", 1)[0]


def _header_reading(app: App, raw: bytes) -> HeaderReading:
    """The HeaderReading of `raw` (run in the child)."""
    msg = parse_raw(app, _header_block(raw) + b"\n\n")
    intake = app.intake
    hits = detect_automatic(
        msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain, body_read=False
    )
    return HeaderReading(replace(msg, raw=b""), tuple(hits), from_problem(msg))


def thread_keys(raw: bytes) -> tuple[tuple[str, ...], str]:
    """(In-Reply-To and References Message-IDs, decoded Subject) read from the top header
    block alone (capped by the header guard): what threading needs, before the full parse."""
    try:
        block = _header_block(raw)
        head = BytesHeaderParser(policy=compat32).parsebytes(block + b"\n\n")
        ids = tuple(
            found
            for name in ("In-Reply-To", "References")
            for value in head.get_all(name) or []
            for found in _MSG_ID.findall(str(value))
        )
        subject = str(email.header.make_header(email.header.decode_header(head["Subject"] or "")))
    except Exception:  # hostile headers: threading then happens after the full parse
        return (), ""
    return ids, " ".join(subject.split())


def _reason(exceeded: str | None) -> str:
    detail = exceeded or "el análisis no terminó"
    return f"Mensaje enviado al personal sin leer: {detail}; revíselo a mano"
