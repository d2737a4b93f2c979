"""Active content in an attached PDF (JavaScript, embedded files, launch actions), for staff.

A request's PDF is a document to read, never a program: a PDF that carries JavaScript, embedded
files or actions that start programs (ISO 32000-1 §12.6.4 action types, §7.11.4 embedded file
streams) is flagged so staff open it only in a safe viewer. Two looks, both bounded: a scan of
the raw bytes for the PDF names that introduce such content, and a read of the document catalog
and page annotations with pypdf (which also sees objects kept in compressed object streams).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from typing import TYPE_CHECKING, Any

from mailflow.intake.pdflibs import PYPDF, preload

if TYPE_CHECKING:
    from pypdf import PdfReader

logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_PAGES = 50  # pages whose annotations are inspected
_NAMES = {
    b"JavaScript": "JavaScript",
    b"JS": "JavaScript",
    b"EmbeddedFile": "archivos incrustados",
    b"EmbeddedFiles": "archivos incrustados",
    b"Launch": "acción que abre programas",
    b"RichMedia": "contenido multimedia activo",
}
_RAW = re.compile(rb"/(JavaScript|JS|EmbeddedFiles?|Launch|RichMedia)(?![A-Za-z0-9#])")
_ACTIONS = {"/JavaScript": "JavaScript", "/Launch": "acción que abre programas"}


def active_content(data: bytes) -> tuple[str, ...]:
    """Spanish names of the kinds of active content in PDF `data`, in a fixed order; () if none.

    Never raises: a PDF too damaged for pypdf is judged on its raw bytes only.
    """
    preload(PYPDF)  # imported with the first PDF, not at start-up (nor in its CPU budget)
    from pypdf import PdfReader

    found = {_NAMES[m.group(1)] for m in _RAW.finditer(data)}
    with contextlib.suppress(Exception):  # damaged files: the text reader reports them
        found |= _from_catalog(PdfReader(io.BytesIO(data), strict=False))
    order = list(dict.fromkeys(_NAMES.values()))
    return tuple(sorted(found, key=order.index))


def _from_catalog(reader: PdfReader) -> set[str]:
    found: set[str] = set()
    root = _get(reader.trailer, "/Root")
    names = _get(root, "/Names")
    if _get(names, "/JavaScript") is not None:
        found.add("JavaScript")
    if _get(names, "/EmbeddedFiles") is not None:
        found.add("archivos incrustados")
    found |= _action(_get(root, "/OpenAction"))
    if _get(root, "/AA") is not None:
        found.add("JavaScript")
    for number, page in enumerate(reader.pages):
        if number >= MAX_PAGES:
            break
        if _get(page, "/AA") is not None:
            found.add("JavaScript")
        for annot in _get(page, "/Annots") or []:
            annot = annot.get_object()
            found |= _action(_get(annot, "/A"))
            if _get(annot, "/Subtype") == "/FileAttachment":
                found.add("archivos incrustados")
    return found


def _action(action: Any) -> set[str]:
    kind = _get(action, "/S")
    return {_ACTIONS[kind]} if kind in _ACTIONS else set()


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    try:
        obj = obj.get_object()
        return obj.get(key) if hasattr(obj, "get") else None
    except Exception:
        return None
