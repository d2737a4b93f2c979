"""Text whose charset nobody declared: UTF-8, Windows-1252, or detected (charset-normalizer)."""

from __future__ import annotations

import re

_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
_HIGH = re.compile(rb"[\x80-\xff]")
MAX_DETECT = 4096  # bytes handed to detection: enough to tell scripts apart, cheap on junk


def decode_unlabelled(data: bytes, hint: str | None = None) -> str:
    """Decode bytes sent without a charset label (raw 8-bit headers, unlabelled bodies).

    UTF-8 when valid. Otherwise, when the non-ASCII bytes stand alone between ASCII letters
    (Spanish in Latin-1/Windows-1252: "Pr\\xf3rroga"), Windows-1252. Runs of 8-bit bytes are
    the mark of multi-byte or non-Latin scripts (Shift_JIS, GB2312, Big5, EUC-KR, Windows-1251,
    KOI8-R): those are read in `hint` (the charset the message declares elsewhere) when the
    bytes are valid in it, else detected by charset-normalizer, else Windows-1252. Never raises.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if hint:
        try:
            return data.decode(hint)
        except (LookupError, UnicodeDecodeError):
            pass
    high = len(_HIGH.findall(data, 0, MAX_DETECT))
    in_runs = sum(len(m) for m in _HIGH_RUN.findall(data, 0, MAX_DETECT))
    if high and in_runs * 2 > high:
        detected = _detect(data[:MAX_DETECT])
        if detected is not None:
            try:
                return data.decode(detected, "replace")
            except LookupError:
                pass
    return cp1252(data)


def cp1252(data: bytes) -> str:
    """Windows-1252, with Latin-1 for the five bytes it leaves undefined."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes  # imported on use: most mail is UTF-8 or Latin

    best = from_bytes(data).best()
    if best is None or best.encoding in ("ascii", "utf_8"):
        return None
    return str(best.encoding)
