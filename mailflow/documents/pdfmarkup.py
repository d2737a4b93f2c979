"""Plain text for reportlab Paragraphs: every value is escaped before it meets the mini-markup."""

from __future__ import annotations

import re
from typing import Any

from reportlab.platypus import Paragraph

# C0 controls (except tab and newline) and the other characters XML 1.0 forbids: reportlab's
# parser would fail on them, and they carry nothing a reader can see.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def markup_text(value: object) -> str:
    """`value` as Paragraph markup that shows exactly its text: `&`, `<`, `>` and quotes escaped,
    control characters dropped, tabs as spaces, newlines (\\n, \\r\\n, \\r) as `<br/>`.

    Takes any object (str() of it; None gives ""); returns a string safe for Paragraph: no tag
    (`<b>`, `<img src=...>`, `<link>`) or entity in a value is ever interpreted, so a name
    cannot change the layout, fail the build, or pull a local file into the PDF.
    """
    text = "" if value is None else str(value)
    text = _UNPRINTABLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.translate(_ESCAPES).replace("\t", " ").replace("\n", "<br/>")


def text_paragraph(value: object, style: Any) -> Paragraph:
    """A Paragraph in `style` (a reportlab ParagraphStyle) showing `value` as plain text."""
    return Paragraph(markup_text(value), style)
