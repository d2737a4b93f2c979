"""Reasons people read: quoted with «», printable, bounded; never Python reprs or raw bytes."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+")
MAX_QUOTED = 120


def clean(text: str, limit: int = 500) -> str:
    """`text` with control and bidirectional characters replaced by spaces, spaces collapsed,
    cut to `limit` characters (an ellipsis marks the cut)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def quote(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` cleaned and between Spanish quotation marks: «text»."""
    return f"«{clean(text, limit)}»"
