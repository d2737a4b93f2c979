"""Tolerate a damaged line inside a message's header block instead of ending the block there."""

from __future__ import annotations

import re

_FIELD = re.compile(r"[!-9;-~]+[ \t]*:")
# Names that prove the header block goes on after a damaged line (RFC 5322, 2045, 3834, trace).
_KNOWN = re.compile(
    r"(?:subject|from|to|cc|bcc|date|message-id|in-reply-to|references|reply-to|sender|"
    r"mime-version|content-[a-z-]+|received|return-path|delivered-to|x-[a-z0-9-]+|"
    r"dkim-signature|arc-[a-z-]+|authentication-results|received-spf|auto-submitted|"
    r"precedence|list-[a-z-]+|thread-[a-z-]+|importance|priority|user-agent|"
    r"organization|comments|keywords)[ \t]*:",
    re.IGNORECASE,
)
_CORE = re.compile(r"(?:subject|from|to|date|message-id|reply-to|sender)[ \t]*:", re.IGNORECASE)
MAX_DAMAGED = 3  # damaged lines in a row tolerated before the block is taken to have ended
MAX_SCAN = 256 * 1024  # characters of header block inspected


def repair_header_block(text: str) -> tuple[str, int]:
    """`text` with damaged header lines (no "Name:" and not a continuation) removed when a
    known header follows them and a Subject, From, To, Date or Message-ID comes after the
    damage, so the Subject after a broken line is still read; and how many lines were removed. The body and everything after the first blank line is untouched.
    Linear in the header block's length."""
    pos, removed, cuts = 0, 0, []
    end = len(text)
    pending: list[tuple[int, int]] = []
    first = True
    core_after = False  # an identity header (Subject, From…) follows a damaged line
    while pos < min(end, MAX_SCAN):
        newline = text.find("\n", pos)
        line_end = end if newline < 0 else newline + 1
        line = text[pos:line_end].rstrip("\r\n")
        if not line.strip(" \t"):
            break
        if line[0] in " \t" and not pending:
            pass  # folded continuation of the previous field
        elif _FIELD.match(line) or (first and line.startswith("From ")):
            if pending:
                if not _KNOWN.match(line):
                    break  # a damaged line followed by body-like text: the body began
                cuts.extend(pending)
                pending = []
            core_after = core_after or (bool(cuts) and _CORE.match(line) is not None)
        else:
            pending.append((pos, line_end))
            if len(pending) > MAX_DAMAGED:
                break
        first = False
        pos = line_end
    if not cuts or not core_after:
        return text, 0  # nothing that matters after the damage: keep the old reading
    parts, last = [], 0
    for start, stop in cuts:
        parts.append(text[last:start])
        last = stop
        removed += 1
    parts.append(text[last:])
    return "".join(parts), removed
