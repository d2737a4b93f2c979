"""Verification codes (short Crockford base32) and the QR code that points to their page."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from reportlab.lib import colors
from reportlab.pdfgen.canvas import Canvas

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 10
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")


def new_code(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A fresh random verification code of CODE_LENGTH Crockford base32 characters (50 bits)."""
    value = int.from_bytes(random_bytes(7), "big") >> (56 - 5 * CODE_LENGTH)
    chars = []
    for _ in range(CODE_LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def display_code(code: str) -> str:
    """The code as printed for people: "7K3M9-QX2RT"."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_code(text: str) -> str | None:
    """The canonical code for what a person typed or scanned, or None if it cannot be one.

    Case, hyphens and spaces are ignored; O is read as 0 and I/L as 1, as Crockford prescribes.
    """
    candidate = _SEPARATORS.sub("", text).upper().translate(_LOOKALIKES)
    if len(candidate) != CODE_LENGTH or any(ch not in ALPHABET for ch in candidate):
        return None
    return candidate


def verification_url(public_url: str, code: str) -> str:
    """The public page that confirms the document: <public_url>/verificar/<code>."""
    return f"{public_url.rstrip('/')}/verificar/{code}"


def draw_qr(canvas: Canvas, data: str, x: float, y: float, size: float) -> None:
    """Draw a QR code of `data` with its lower-left corner at (x, y), `size` points wide.

    The modules are computed with `qrcode` and drawn as one filled path (a few ms, where
    reportlab's QR widget takes ~20 ms drawing each module as its own shape).
    """
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    cell = size / len(matrix)
    path = canvas.beginPath()
    for row, modules in enumerate(matrix):
        top = y + size - (row + 1) * cell
        col = 0
        while col < len(modules):
            if modules[col]:
                start = col
                while col < len(modules) and modules[col]:
                    col += 1
                path.rect(x + start * cell, top, (col - start) * cell, cell)
            else:
                col += 1
    canvas.saveState()
    canvas.setFillColor(colors.white)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColor(colors.black)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()
