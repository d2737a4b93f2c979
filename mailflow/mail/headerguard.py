"""A linear pre-pass over raw mail before MIME parsing: caps the top header block and the parts."""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.mail.defects import Defect, DefectCode, defect

MAX_BLOCK_BYTES = 256 * 1024  # the whole top header block
MAX_LINES = 5_000  # physical lines of the block, continuation lines included
MAX_HEADER_BYTES = 64 * 1024  # one header, all its continuation lines included
KEPT_VALUE_BYTES = 998  # what is kept of an oversized header (RFC 5322 §2.1.1 line limit)


@dataclass(frozen=True)
class HeaderLimits:
    """Bounds on the top header block, in bytes and lines (RFC 5322 sets no total limit)."""

    max_block_bytes: int = MAX_BLOCK_BYTES
    max_lines: int = MAX_LINES
    max_header_bytes: int = MAX_HEADER_BYTES


@dataclass(frozen=True)
class GuardedHeaders:
    """The bytes to parse and, when a limit was exceeded, why (Spanish, for staff).

    `raw` is the input unchanged when every limit holds; otherwise the header block is rebuilt
    within the limits (oversized headers cut to their first KEPT_VALUE_BYTES bytes, lines past
    the caps dropped) followed by the untouched body.
    """

    raw: bytes
    problems: tuple[Defect, ...] = ()


def guard_headers(raw: bytes, limits: HeaderLimits | None = None) -> GuardedHeaders:
    """Check the top header block of `raw` against `limits`; linear in the block's size.

    Takes raw message bytes and returns the bytes the parser may read with the problems found.
    Never raises. A message whose headers exceed a limit keeps being processed (nothing is
    lost), but each problem becomes a parsing defect, which sends the message to staff.
    """
    limits = limits or HeaderLimits()
    block_end, body_start, truncated = _block_bounds(raw, limits.max_block_bytes)
    block = raw[:block_end]
    problems: list[Defect] = []
    if truncated:
        kb = limits.max_block_bytes // 1024
        problems.append(defect(DefectCode.HEADERS_TOO_BIG, kb=kb))
    lines = block.split(b"\n")
    if len(lines) > limits.max_lines:
        too_many = defect(
            DefectCode.HEADER_LINES_TOO_MANY, lines=len(lines), limit=limits.max_lines
        )
        problems.append(too_many)
        lines = lines[: limits.max_lines]
    headers = _group(lines)
    oversized = [h for h in headers if sum(len(x) + 1 for x in h) > limits.max_header_bytes]
    if oversized:
        names = ", ".join(dict.fromkeys(_name(h[0]) for h in oversized[:5]))
        kb = limits.max_header_bytes // 1024
        problems.append(defect(DefectCode.HEADER_TOO_LONG, names=names, kb=kb))
    if not problems:
        return GuardedHeaders(raw)
    kept: list[bytes] = []
    for header in headers:
        if sum(len(x) + 1 for x in header) > limits.max_header_bytes:
            first = header[0].rstrip(b"\r")[:KEPT_VALUE_BYTES]
            kept.append(first)
        else:
            kept.extend(x.rstrip(b"\r") for x in header)
    rebuilt = b"\r\n".join(kept) + b"\r\n\r\n" + raw[body_start:]
    return GuardedHeaders(rebuilt, tuple(problems))


def _block_bounds(raw: bytes, cap: int) -> tuple[int, int, bool]:
    """(end of the header block, start of the body, whether the block was cut at `cap` bytes)."""
    window = raw[: cap + 3]
    end = _blank_line(window, 0)
    if end is not None and end[0] <= cap:
        return end[0], end[1], False
    if len(raw) <= cap:
        return len(raw), len(raw), False
    cut = raw.rfind(b"\n", 0, cap)
    cut = cut if cut > 0 else cap
    after = _blank_line(raw, cut)
    return cut, (len(raw) if after is None else after[1]), True


def _blank_line(data: bytes, start: int) -> tuple[int, int] | None:
    """(offset of the line end before the first blank line, offset after it), or None."""
    found = [i for i in (data.find(b"\n\n", start), data.find(b"\n\r\n", start)) if i >= 0]
    if not found:
        return None
    at = min(found)
    return at, at + (2 if data[at : at + 2] == b"\n\n" else 3)


def cap_parts(raw: bytes, max_parts: int) -> GuardedHeaders:
    """Cut `raw` before its (10 × max_parts + 100)-th MIME delimiter line ("--" at a line start).

    A message with tens of thousands of tiny parts would otherwise cost the MIME parsers time
    out of proportion to what is read (only `max_parts` parts are). Linear; never raises.
    """
    limit = 10 * max_parts + 100
    if raw.count(b"\n--") <= limit:
        return GuardedHeaders(raw)
    pos = 0
    for _ in range(limit):
        pos = raw.find(b"\n--", pos) + 3
    problem = defect(DefectCode.MIME_DELIMITERS_TOO_MANY, limit=limit)
    return GuardedHeaders(raw[: pos - 3] + b"\r\n", (problem,))


def _group(lines: list[bytes]) -> list[list[bytes]]:
    """Lines grouped per header: a line starting with space or tab continues the previous one."""
    headers: list[list[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1].append(line)
        elif line.strip():
            headers.append([line])
    return headers


def _name(line: bytes) -> str:
    name = line.split(b":", 1)[0].strip()[:40]
    return name.decode("ascii", "replace") or "sin nombre"
