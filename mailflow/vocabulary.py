"""Closed vocabularies shared across stages, as StrEnum: each member equals its string value.

The values are the strings stored in the database and in the public JSON contract
(DESIGN.md), so a member compares equal to, hashes as, and serialises (json, SQL) as its plain
string: code that still passes or compares plain strings keeps working unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class InboxStatus(StrEnum):
    """Where one stored message (inbox_messages.status) is in its processing.

    new: stored, waiting for a worker; processing: claimed by a worker (or being reprocessed
    from the desk, inside its transaction); done: decided and acted on; set_aside: over its
    retries, left for staff; duplicate: the same message was already stored.
    """

    NEW = "new"
    PROCESSING = "processing"
    DONE = "done"
    SET_ASIDE = "set_aside"
    DUPLICATE = "duplicate"


class Disposition(StrEnum):
    """What intake decided to do with a message (`Decision.disposition`, the JSON contract).

    accept: a case proceeds; observe: the applicant is asked for what is missing (subsanación);
    review: staff decide; ignore: automatic mail, never answered; inform: an informative reply
    (a procedure handled by another channel), no case. inbox_messages.disposition stores these
    and one more, "answered" (staff answered the message from the desk, `web.desk`).
    """

    ACCEPT = "accept"
    OBSERVE = "observe"
    REVIEW = "review"
    IGNORE = "ignore"
    INFORM = "inform"


# What a machine state may declare as the disposition of the message that led to it (an ignored
# message never reaches a state).
STATE_DISPOSITIONS: tuple[Disposition, ...] = (
    Disposition.ACCEPT,
    Disposition.OBSERVE,
    Disposition.REVIEW,
    Disposition.INFORM,
)


class SignatureStatus(StrEnum):
    """What the digital signatures of an attachment (or of the escrito) amount to (`signature`).

    valid: intact and chaining to a trust root (settings.signatures.trust_roots); untrusted:
    intact, but its certificate does not chain to a trust root; invalid: altered after signing
    or damaged; unsigned: a PDF without a digital signature; absent: no PDF attached.
    """

    VALID = "valid"
    UNTRUSTED = "untrusted"
    INVALID = "invalid"
    UNSIGNED = "unsigned"
    ABSENT = "absent"


class AuditKind(StrEnum):
    """The kind of one audit event (case_events.kind); `labels.EVENTS` gives its Spanish heading."""

    INTAKE = "intake"  # a request received and decided
    TRANSITION = "transition"  # a state change of a case's machine
    SLA = "sla"  # a deadline started, paused, resumed or recalculated
    REPLY = "reply"  # a reply queued to the applicant
    REPLY_SUPPRESSED = "reply_suppressed"  # a reply not sent (daily cap, no address …)
    PERSONAL = "personal"  # an action taken by staff on the desk
    IGNORADO = "ignorado"  # a message set aside by staff
    EXCEPTION = "exception"  # a message or case sent to the exception queue
    NOTIFY = "notify"  # a notice to staff
    ASSIGN = "assign"  # a case assigned to someone
    FLAG = "flag"  # a flag raised on a case
    DOCUMENT = "document"  # a document issued and signed
    TIMER = "timer"  # a deadline timer fired
    TIMER_NOOP = "timer_noop"  # a timer fired with nothing left to do
    DATA_UPDATE = "data_update"  # the applicant registry updated from a request
    MESSAGE = "message"  # an email joined to a case
    DUPLICATE = "duplicate"  # an email already received
    REVIEW = "review"  # sent to staff review
    ACCEPT = "accept"
    INFORM = "inform"
    IGNORE = "ignore"
    NOTA = "nota"  # an internal note by staff
    RULE = "rule"  # an automatic-mail rule matched
    DELIVERY = "delivery"  # a document handed to another authority (Migraciones)
    DELIVERED = "delivered"  # the product accepted by the applicant's mail server
    DELIVERY_ACCEPTED = "delivery_accepted"  # our mail server accepted a product or oficio
    POLICY = "policy"  # the issuance policy judged a case (automatic or staff approval)
    PRIORIDAD = "prioridad"  # vulnerability signals detected, confirmed or discarded
    REVOCATION = "revocation"  # an issued document revoked
    VULNERABILIDAD_VISTA = "vulnerabilidad_vista"  # a vulnerability signal seen by staff
