"""The request in a body: quoted replies cut, but a forward of one's own request kept."""

from __future__ import annotations

import re

from mailflow.intake.escrito import same_person
from mailflow.intake.fields import strip_quoted

MAX_NESTED = 3  # a forward of a forward of a forward
SHORT_NOTE = 600  # characters above a forward that are only a covering note
_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*(?:forwarded message|mensaje reenviado|original message|"
    r"mensaje original)[ \t]*-*|(?:begin forwarded message|inicio del mensaje reenviado|"
    r"mensaje reenviado)[ \t]*:?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER = re.compile(
    r"^[ \t>]*[*_]*(?P<name>de|from|date|fecha|enviado(?: el)?|sent|subject|asunto|to|para|cc|"
    r"cco|bcc|reply-to|responder a)[*_]*[ \t]*:[*_]*[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_FROM_THEN_HEADER = re.compile(
    r"^[ \t>]*[*_]*(?:de|from)[*_]*[ \t]*:[^\n]*\n(?:[^\n]*\n){0,3}?[ \t>]*[*_]*"
    r"(?:enviado|sent|fecha|date)[*_]*[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_ATTRIBUTION = re.compile(
    r"^[ \t]*(?:el|on)\b(?P<who>[^\n]{0,300}?(?:\n[^\n]{0,200}?){0,2})"
    r"(?:escribi[oó]|wrote)[ \t]*:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTE_MARK = re.compile(r"^[ \t]?>[ \t]?", re.MULTILINE)
_ADDRESS = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def request_body(text: str, sender: str, sender_name: str, _depth: int = 0) -> str:
    """The part of `text` that carries the sender's request.

    Quoted replies, signatures and footers are cut (`fields.strip_quoted`), except a quote of
    the sender's own earlier mail ("El … <sender> escribió:") and an inline forward ("---------- Forwarded message ---------", "Mensaje reenviado", Outlook's
    "De: … Enviado: …") whose original is from the sender (same address or same name), or
    that follows only a short covering note: then the covering note and the forwarded text
    (without its header lines) are the request. Linear in the text's length.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _depth >= MAX_NESTED:
        return strip_quoted(text)
    own_quote = _own_quote(text, sender, sender_name, _depth)
    if own_quote is not None:
        return own_quote
    start = _forward_start(text)
    if start is None:
        return strip_quoted(text)
    head, rest = text[:start], text[start:]
    marker = _MARKER.match(rest) is not None
    origin, body = _split_headers(rest, marker)
    if body is None:
        return strip_quoted(text)
    note = strip_quoted(head)
    own = _is_sender(origin, sender, sender_name)
    if not own and not (marker and len(note.strip()) <= SHORT_NOTE):
        return strip_quoted(text)
    inner = request_body(body, sender, sender_name, _depth + 1)
    return f"{note}\n\n{inner}".strip("\n")


def _own_quote(text: str, sender: str, sender_name: str, depth: int) -> str | None:
    """A reply quoting the sender's own earlier mail ("El … Ana <ana@…> escribió:" then "> …"
    lines): the note and the unquoted earlier text; None when the quote is someone else's."""
    found = _ATTRIBUTION.search(text)
    if found is None:
        return None
    start = _forward_start(text)
    if start is not None and start < found.start():
        return None  # a forward comes first: handled as a forward
    if not _is_sender(found["who"], sender, sender_name):
        return None
    note = strip_quoted(text[: found.start()])
    earlier = _QUOTE_MARK.sub("", text[found.end() :])
    inner = request_body(earlier, sender, sender_name, depth + 1)
    return f"{note}\n\n{inner}".strip("\n")


def _forward_start(text: str) -> int | None:
    """Offset of the first forward marker or "De:/From:" header block, if any."""
    found = [m.start() for m in (_MARKER.search(text), _FROM_THEN_HEADER.search(text)) if m]
    return min(found) if found else None


def _split_headers(rest: str, marker: bool) -> tuple[str, str | None]:
    """("From" value, the forwarded text after its header lines, headed by its "Asunto:");
    body None when there is no header block."""
    lines = rest.split("\n")
    index = 1 if marker else 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    origin, subject, seen = "", "", 0
    while index < len(lines) and seen < 12:
        match = _HEADER.match(lines[index])
        if match is None:
            break
        name = match["name"].lower()
        if name in ("de", "from") and not origin:
            origin = match["value"]
        elif name in ("subject", "asunto") and not subject:
            subject = match["value"].strip()
        seen += 1
        index += 1
    if seen == 0 and not marker:
        return "", None
    heading = f"Asunto: {subject}\n\n" if subject else ""  # classifies a bare "Fwd:"
    return origin, heading + "\n".join(lines[index:])


def _is_sender(origin: str, sender: str, sender_name: str) -> bool:
    if not origin:
        return False
    found = _ADDRESS.search(origin)
    if found and sender and found.group(0).lower() == sender.lower():
        return True
    name = _ADDRESS.sub(" ", origin).replace("<", " ").replace(">", " ").strip(" \"'")
    return bool(name and sender_name and same_person(name, sender_name))
