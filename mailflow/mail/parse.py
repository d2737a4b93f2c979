"""Turn raw email bytes into a ParsedMessage without ever raising: flanker first, then fallbacks.

This module walks the MIME tree and assembles the message; decoding text (charsets, header
words, parameters, addresses, dates) is in `mailflow.mail.decoding`.
"""

from __future__ import annotations

import binascii
import email
import email.message
import email.policy
import email.utils
import logging
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

for _name in ("flanker.addresslib._parser.parser", "flanker.addresslib", "flanker", "ply"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from flanker import mime as flanker_mime  # noqa: E402  (loggers must be quiet first)

from mailflow.mail.containers import MAX_CONTAINER_DEPTH, kind_of, open_container  # noqa: E402
from mailflow.mail.decoding import (  # noqa: E402
    address,
    addresses,
    declared_charset,
    decode_bytes,
    decode_header,
    header_date,
    header_params,
    lenient,
    message_ids,
    param_text,
)
from mailflow.mail.defects import Defect, DefectCode, defect  # noqa: E402
from mailflow.mail.headerblock import repair_header_block  # noqa: E402
from mailflow.mail.headerguard import cap_parts, guard_headers  # noqa: E402
from mailflow.mail.htmltext import html_to_text  # noqa: E402
from mailflow.mail.message import Attachment, ParsedMessage  # noqa: E402
from mailflow.reasons import quote  # noqa: E402

MAX_DEPTH = 30
MAX_DETECTIONS = 4  # unlabelled text parts per message whose charset is detected (~20 ms each)
_HEADER_NAME = re.compile(r"[!-9;-~]+[ \t]*:")


@dataclass
class _Leaf:
    """One non-multipart part: its content type, first header values and raw encoded body."""

    ctype: str
    headers: dict[str, str]
    body: str  # transfer-encoded body, one character per byte (latin-1)
    enclosed: bool  # inside an attached message/rfc822


def parse_message(
    raw: bytes,
    *,
    max_parts: int = 200,
    max_attachment_bytes: int = 25 * 1024 * 1024,
    max_text_chars: int = 200_000,
    container_depth: int = 0,
) -> ParsedMessage:
    """Parse one message; every problem found becomes a `Defect` (code + Spanish text) in `defects`.

    The header block and the number of MIME parts are capped first (`headerguard`, linear
    time). Containers (winmail.dat, opaque S/MIME signed-data, attached messages) are opened
    up to `containers.MAX_CONTAINER_DEPTH` levels; `container_depth` is the current level.
    """
    guarded = guard_headers(raw)
    capped = cap_parts(guarded.raw, max_parts)
    defects: list[Defect] = [*guarded.problems, *capped.problems]
    try:
        text = capped.raw.decode("latin-1")  # one character per byte: offsets and bytes survive
        text = _without_damaged_header_lines(text, defects)
        pairs, body_start = _read_headers(text, 0, len(text))
        leaves = _leaves(text, pairs, body_start, max_parts, defects)
        limits = _Limits(max_parts, max_attachment_bytes, max_text_chars, container_depth)
        return _build(raw, pairs, leaves, defects, limits)
    except Exception as exc:  # last resort: never lose the message
        defects.append(defect(DefectCode.UNREADABLE, why=_why(exc)))
        body = _normalise(lenient(raw[: max_text_chars * 4]), max_text_chars, defects)
        return ParsedMessage(raw=raw, text=body, defects=tuple(defects))


def _without_damaged_header_lines(text: str, defects: list[Defect]) -> str:
    repaired, removed = repair_header_block(text)
    if removed:
        defects.append(defect(DefectCode.HEADER_LINES_DAMAGED, count=removed))
    return repaired


def _leaves(
    text: str, pairs: list[tuple[str, str]], body_start: int, max_parts: int, defects: list[Defect]
) -> list[_Leaf]:
    try:
        return _flanker_leaves(text, max_parts, defects)
    except Exception as exc:
        defects.append(defect(DefectCode.MIME_MALFORMED, why=_why(exc)))
    try:
        return _stdlib_leaves(text, max_parts, defects)
    except Exception as exc:
        defects.append(defect(DefectCode.MIME_UNREADABLE, why=_why(exc)))
    return [_Leaf("text/plain", dict(reversed(pairs)), text[body_start:], False)]


def _flanker_leaves(text: str, max_parts: int, defects: list[Defect]) -> list[_Leaf]:
    root = flanker_mime.from_string(text)
    leaves: list[_Leaf] = []
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    count = 0
    while stack:
        part, depth, enclosed = stack.pop()
        count += 1
        ctype, stream = part.content_type, part._container
        children = list(part.parts) if ctype.is_multipart() else []
        inner = part.enclosed if ctype.is_message_container() else None
        if depth >= MAX_DEPTH and (children or inner is not None):
            defects.append(defect(DefectCode.MIME_TOO_DEEP, depth=MAX_DEPTH))
            continue
        stack.extend((child, depth + 1, enclosed) for child in reversed(children))
        if inner is not None:
            stack.append((inner, depth + 1, True))
        if count > max_parts:
            continue  # keep counting, stop reading
        pairs, start = _read_headers(text, stream.start, stream.end + 1)
        if ctype.is_multipart():
            boundary = ctype.get_boundary() or ""
            if text.find(f"--{boundary}--", stream.start, stream.end + 1) < 0:
                defects.append(defect(DefectCode.MIME_TRUNCATED, boundary=quote(boundary, 70)))
        else:
            kind = "message/rfc822" if inner is not None else f"{ctype.main}/{ctype.sub}"
            leaves.append(
                _Leaf(kind, dict(reversed(pairs)), text[start : stream.end + 1], enclosed)
            )
    if count > max_parts:
        defects.append(defect(DefectCode.PARTS_TOO_MANY, count=count, limit=max_parts))
    return leaves


def _stdlib_leaves(text: str, max_parts: int, defects: list[Defect]) -> list[_Leaf]:
    root = email.message_from_string(text, policy=email.policy.compat32)
    leaves: list[_Leaf] = []
    stack: list[tuple[email.message.Message, int, bool]] = [(root, 0, False)]
    count = 0
    while stack:
        part, depth, enclosed = stack.pop()
        count += 1
        ctype, payload = part.get_content_type(), part.get_payload()
        if any("CloseBoundary" in type(d).__name__ for d in part.defects):
            defects.append(defect(DefectCode.MIME_TRUNCATED, boundary="una parte multipart"))
        children: list[Any] = payload if isinstance(payload, list) else []
        if depth >= MAX_DEPTH and children:
            defects.append(defect(DefectCode.MIME_TOO_DEEP, depth=MAX_DEPTH))
            continue
        is_message = ctype == "message/rfc822"
        stack.extend((child, depth + 1, enclosed or is_message) for child in reversed(children))
        if count > max_parts or (children and not is_message):
            continue
        headers = {k.lower(): " ".join(str(v).split()) for k, v in reversed(part.items())}
        body = children[0].as_string() if is_message and children else str(payload)
        ctype = "text/plain" if ctype.startswith("multipart/") else ctype  # no usable parts
        leaves.append(_Leaf(ctype, headers, body, enclosed))
    if count > max_parts:
        defects.append(defect(DefectCode.PARTS_TOO_MANY, count=count, limit=max_parts))
    return leaves


@dataclass(frozen=True)
class _Limits:
    parts: int
    attachment_bytes: int
    text_chars: int
    depth: int


def _build(
    raw: bytes,
    pairs: list[tuple[str, str]],
    leaves: list[_Leaf],
    defects: list[Defect],
    limits: _Limits,
) -> ParsedMessage:
    max_bytes, max_chars = limits.attachment_bytes, limits.text_chars
    hint = None if all(v.isascii() for _, v in pairs) else _body_charset(leaves)
    detections = 0  # unlabelled text parts handed to charset detection (bounded per message)
    decoded: dict[str, list[str]] = {}
    for name, value in pairs:
        decoded.setdefault(name, []).append(decode_header(value, defects, hint))
    headers = {k: tuple(v) for k, v in decoded.items()}
    top = dict(reversed(pairs))
    sender_name, sender = address(top.get("from", ""), defects, hint)
    plain: list[str] = []
    html: list[str] = []
    inner_plain: list[str] = []
    inner_html: list[str] = []
    heading = ""  # "Asunto: …" of the attached message whose text comes next
    attachments: list[Attachment] = []
    for leaf in leaves:
        if leaf.ctype == "message/rfc822" and heading:
            inner_plain.append(heading)
        if leaf.ctype == "message/rfc822":
            heading = _enclosed_heading(leaf.body, defects, hint)
        disposition, dparams = header_params(leaf.headers.get("content-disposition", ""))
        _, cparams = header_params(leaf.headers.get("content-type", ""))
        filename = param_text(dparams.get("filename") or cparams.get("name"), defects)
        is_body = leaf.ctype in ("text/plain", "text/html") and not filename
        is_body = is_body and disposition.lower() != "attachment"
        name = leaf.ctype if is_body else _filename(filename, leaf.ctype, len(attachments) + 1)
        size = _estimated_size(leaf)
        if size > max_bytes + 4096:
            defects.append(
                defect(DefectCode.ATTACHMENT_TOO_BIG, name=quote(name), mb=size / 1048576)
            )
            continue
        data = _transfer_decode(leaf, name, defects)
        if is_body:
            label = str(cparams.get("charset") or "")
            detections += not label
            body = decode_bytes(data, label, defects, detect=detections <= MAX_DETECTIONS)
            if leaf.enclosed and leaf.ctype == "text/html":
                inner_html.append(body)
            elif leaf.enclosed:
                inner_plain.append(f"{heading}\n\n{body}" if heading else body)
                heading = ""
            else:
                (html if leaf.ctype == "text/html" else plain).append(body)
        elif len(data) > max_bytes:
            mb = len(data) / 1048576
            defects.append(defect(DefectCode.ATTACHMENT_TOO_BIG, name=quote(name), mb=mb))
        elif (kind := kind_of(leaf.ctype, name)) is not None and limits.depth < MAX_CONTAINER_DEPTH:
            opened = _open(kind, data, limits, defects)
            (plain if kind == "pkcs7" and not leaf.enclosed else inner_plain).extend(opened[0])
            attachments.extend(opened[1])
            inner_plain.extend(opened[2])
        else:
            attachments.append(Attachment(name, leaf.ctype, data))
    if inner_html and not any(p.strip() for p in inner_plain):
        inner_plain = [heading, *(html_to_text(h) for h in inner_html)]
    elif heading:
        inner_plain.append(heading)
    html_text = "\n".join(html) if html else None
    text = "\n\n".join(p for p in plain if p.strip())
    if not text and html_text:
        text = html_to_text(html_text)
    if not text and inner_plain:
        text, inner_plain = "\n\n".join(inner_plain), []
    root_ctype = header_params(top.get("content-type", "text/plain"))[0].lower() or "text/plain"
    return ParsedMessage(
        raw=raw,
        message_id=next(iter(message_ids(top.get("message-id", ""))), None),
        subject=" ".join(headers.get("subject", ("",))[0].split()),
        sender=sender,
        sender_name=sender_name,
        to=tuple(a for _, a in addresses(top.get("to", ""))),
        date=header_date(top.get("date", ""), defects),
        in_reply_to=message_ids(top.get("in-reply-to", "")),
        references=message_ids(top.get("references", "")),
        headers=headers,
        content_type=root_ctype if "/" in root_ctype else "text/plain",
        text=_normalise(text, max_chars, defects),
        html=html_text,
        attachments=tuple(attachments),
        defects=tuple(dict.fromkeys(defects)),
        enclosed=tuple(_normalise(t, max_chars, defects) for t in inner_plain if t.strip()),
    )


def _enclosed_heading(body: str, defects: list[Defect], hint: str | None) -> str:
    """ "Asunto: …" of an attached message (its own Subject header), or ""."""
    pairs, _ = _read_headers(body, 0, min(len(body), 64 * 1024))
    subject = next((v for n, v in pairs if n == "subject"), "")
    subject = " ".join(decode_header(subject, defects, hint).split())[:300]
    return f"Asunto: {subject}" if subject else ""


def _open(
    kind: str, data: bytes, limits: _Limits, defects: list[Defect]
) -> tuple[list[str], list[Attachment], list[str]]:
    """A container's (body texts, attachments, enclosed texts), opened one level deeper."""
    opened = open_container(kind, data, limits.attachment_bytes)
    defects.extend(opened.defects)
    files = [Attachment(n, c, d) for n, c, d in opened.files]
    if opened.mime is None:
        return list(opened.texts), files, []
    inner = parse_message(
        opened.mime,
        max_parts=limits.parts,
        max_attachment_bytes=limits.attachment_bytes,
        max_text_chars=limits.text_chars,
        container_depth=limits.depth + 1,
    )
    defects.extend(inner.defects)
    return [inner.text], [*files, *inner.attachments], list(inner.enclosed)


def _read_headers(text: str, start: int, end: int) -> tuple[list[tuple[str, str]], int]:
    """Unfolded (lower-case name, raw value) pairs and the offset where the body starts."""
    pairs: list[list[str]] = []
    pos = start
    while pos < end:
        newline = text.find("\n", pos, end)
        line_end = end if newline < 0 else newline + 1
        line = text[pos:line_end].rstrip("\r\n")
        if not line.strip(" \t"):
            pos = line_end  # the blank line ends the header block
            break
        if line[0] in " \t":
            if pairs:
                pairs[-1].append(line.strip(" \t"))
        elif line.startswith("From ") and not pairs:
            pass
        elif match := _HEADER_NAME.match(line):
            colon = match.end()
            pairs.append([line[: colon - 1].strip().lower(), line[colon:].strip(" \t")])
        else:
            break  # no blank line before the body
        pos = line_end
    return [(p[0], " ".join(p[1:])) for p in pairs], pos


def _body_charset(leaves: list[_Leaf]) -> str | None:
    """The first non-Latin, non-UTF-8 charset declared by a text part: raw 8-bit headers of
    the same message are most likely in it (a Shift_JIS body, a Shift_JIS subject)."""
    for leaf in leaves[:8]:
        if leaf.ctype.startswith("text/"):
            label = declared_charset(leaf.headers.get("content-type", ""))
            if label is not None:
                return label
    return None


def _why(exc: BaseException) -> str:
    """A parser failure in Spanish: the exception's kind, never its English message."""
    kind = type(exc).__name__
    if "Boundary" in kind or "boundary" in str(exc).lower():
        return "delimitador de partes inválido"
    if "Header" in kind or "header" in str(exc).lower():
        return "encabezado inválido"
    if isinstance(exc, RecursionError):
        return "anidamiento excesivo"
    if isinstance(exc, MemoryError):
        return "demasiado grande para leerlo"
    return "estructura no reconocida"


def _filename(name: str, ctype: str, index: int) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "", name.replace("\\", "/").split("/")[-1]).strip()
    if name:
        return unicodedata.normalize("NFC", name)[:200]
    if ctype == "message/rfc822":
        return f"mensaje-adjunto-{index}.eml"
    return f"adjunto-{index}{mimetypes.guess_extension(ctype) or '.bin'}"


def _estimated_size(leaf: _Leaf) -> int:
    body = leaf.body
    if leaf.headers.get("content-transfer-encoding", "").strip().lower() == "base64":
        return (len(body) - body.count("\n") - body.count("\r")) * 3 // 4
    return len(body)


def _transfer_decode(leaf: _Leaf, name: str, defects: list[Defect]) -> bytes:
    encoding = leaf.headers.get("content-transfer-encoding", "").strip().lower()
    data = leaf.body.encode("latin-1")
    if encoding == "base64":
        try:
            return binascii.a2b_base64(data)
        except (binascii.Error, ValueError):
            defects.append(defect(DefectCode.BASE64_INVALID, name=quote(name)))
            data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
            data = data[: len(data) // 4 * 4 + (len(data) % 4 > 1) * (len(data) % 4)]
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    return binascii.a2b_qp(data) if encoding == "quoted-printable" else data


def _normalise(text: str, max_chars: int, defects: list[Defect]) -> str:
    text = text[: max_chars * 2].replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text if text.isascii() else unicodedata.normalize("NFC", text)
    if len(text) > max_chars:
        defects.append(defect(DefectCode.TEXT_TRUNCATED, limit=max_chars))
        text = text[:max_chars]
    return text
