"""Turn raw email bytes into a ParsedMessage without ever raising: flanker first, then fallbacks."""

from __future__ import annotations

import binascii
import datetime as dt
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

from mailflow.charsets import decode_unlabelled  # noqa: E402
from mailflow.containers import MAX_CONTAINER_DEPTH, kind_of, open_container  # noqa: E402
from mailflow.defects import Defect, DefectCode, defect  # noqa: E402
from mailflow.headerblock import repair_header_block  # noqa: E402
from mailflow.headerguard import cap_parts, guard_headers  # noqa: E402
from mailflow.htmltext import html_to_text  # noqa: E402
from mailflow.message import Attachment, ParsedMessage  # noqa: E402
from mailflow.reasons import quote  # noqa: E402

MAX_DEPTH = 30
MAX_DETECTIONS = 4  # unlabelled text parts per message whose charset is detected (~20 ms each)
_HEADER_NAME = re.compile(r"[!-9;-~]+[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*?)\?=")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_CHARSET_OK = re.compile(r"[a-z0-9_\-.:]{1,40}")
_UTF8 = frozenset({"utf-8", "utf8", "unicode-1-1-utf-8"})
_LATIN = frozenset(
    {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "cp1252", "windows-1252"}
)
_ALIASES = {"utf8": "utf-8", "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "gb2312": "gbk"}


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
        body = _normalise(_lenient(raw[: max_text_chars * 4]), max_text_chars, defects)
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
        decoded.setdefault(name, []).append(_decode_header(value, defects, hint))
    headers = {k: tuple(v) for k, v in decoded.items()}
    top = dict(reversed(pairs))
    sender_name, sender = _address(top.get("from", ""), defects, hint)
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
        disposition, dparams = _params(leaf.headers.get("content-disposition", ""))
        _, cparams = _params(leaf.headers.get("content-type", ""))
        filename = _param_text(dparams.get("filename") or cparams.get("name"), defects)
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
            body = _decode_bytes(data, label, defects, detect=detections <= MAX_DETECTIONS)
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
    root_ctype = _params(top.get("content-type", "text/plain"))[0].lower() or "text/plain"
    return ParsedMessage(
        raw=raw,
        message_id=next(iter(_ids(top.get("message-id", ""))), None),
        subject=" ".join(headers.get("subject", ("",))[0].split()),
        sender=sender,
        sender_name=sender_name,
        to=tuple(a for _, a in _addresses(top.get("to", ""))),
        date=_date(top.get("date", ""), defects),
        in_reply_to=_ids(top.get("in-reply-to", "")),
        references=_ids(top.get("references", "")),
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
    subject = " ".join(_decode_header(subject, defects, hint).split())[:300]
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
        if not leaf.ctype.startswith("text/"):
            continue
        _, params = _params(leaf.headers.get("content-type", ""))
        label = str(params.get("charset") or "").strip().strip("\"'").lower()
        label = _ALIASES.get(label, label)
        if label and label not in _LATIN and label not in _UTF8 and _CHARSET_OK.fullmatch(label):
            return label
    return None


def _decode_bytes(
    data: bytes, label: str | None, defects: list[Defect], *, detect: bool = True
) -> str:
    """Decode with the declared charset; fall back to utf-8, then windows-1252, then latin-1.
    Unlabelled text is detected (`charsets.decode_unlabelled`) when `detect`."""
    charset = (label or "").strip().strip("\"'").lower()
    charset = _ALIASES.get(charset, charset)
    if not charset:
        return decode_unlabelled(data) if detect else _lenient(data)
    if charset in _LATIN:
        return _lenient(data)  # ascii/latin-1 labels often hide utf-8 or windows-1252
    if charset in _UTF8:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            defects.append(defect(DefectCode.NOT_UTF8))
            return _cp1252(data)
    try:
        if not _CHARSET_OK.fullmatch(charset):
            raise LookupError(charset)
        return data.decode(charset)
    except LookupError:
        try:
            text, used = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, used = _cp1252(data), "latin-1"
        defects.append(defect(DefectCode.CHARSET_UNKNOWN, label=quote(str(label), 40), used=used))
        return text
    except UnicodeDecodeError:
        defects.append(defect(DefectCode.CHARSET_INVALID_TEXT, label=quote(str(label), 40)))
        return data.decode(charset, "replace")


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


def _cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lenient(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _cp1252(data)


def _decode_header(value: str, defects: list[Defect], hint: str | None = None) -> str:
    """RFC 2047 words decoded; raw 8-bit bytes read as UTF-8, else in the body's declared
    charset (`hint`), else detected (`charsets.decode_unlabelled`)."""
    if "=?" not in value:
        return value if value.isascii() else decode_unlabelled(value.encode("latin-1"), hint)
    chunks: list[tuple[bytes, str | None]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if between and not (between.isspace() and chunks and chunks[-1][1] is not None):
            chunks.append((between.encode("latin-1"), None))
        charset, kind, payload = match.groups()
        charset = charset.split("*")[0].lower()
        try:
            if kind in "qQ":
                data = binascii.a2b_qp(payload.encode("latin-1"), header=True)
            else:
                data = payload.encode("latin-1")
                data = binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
        except (binascii.Error, ValueError):
            word = quote(match.group(0), 60)
            defects.append(defect(DefectCode.ENCODED_WORD_INVALID, word=word))
            data, charset = match.group(0).encode("latin-1"), ""
        if chunks and chunks[-1][1] == charset:
            chunks[-1] = (chunks[-1][0] + data, charset)
        else:
            chunks.append((data, charset))
        pos = match.end()
    if pos < len(value):
        chunks.append((value[pos:].encode("latin-1"), None))
    return "".join(
        decode_unlabelled(d, hint) if c is None else _decode_bytes(d, c, defects) for d, c in chunks
    )


def _params(value: str) -> tuple[str, dict[str, Any]]:
    if not value:
        return "", {}
    holder = email.message.Message()
    holder["x"] = value
    try:
        items = holder.get_params(header="x") or []
    except Exception:
        return value.split(";")[0].strip(), {}
    main = str(items[0][0]) if items else ""
    return main.strip(), {str(k).lower(): v for k, v in items[1:]}


def _param_text(value: Any, defects: list[Defect]) -> str:
    if isinstance(value, tuple) and len(value) == 3:
        return _decode_bytes(str(value[2]).encode("latin-1", "replace"), value[0], defects)
    return _decode_header(str(value), defects) if value else ""


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


def _addresses(value: str) -> list[tuple[str, str]]:
    try:
        found = email.utils.getaddresses([value])
    except Exception:
        return []
    return [(n, a.strip().lower()) for n, a in found if "@" in a and " " not in a.strip()]


def _address(value: str, defects: list[Defect], hint: str | None = None) -> tuple[str, str]:
    found = _addresses(value)
    if not found:
        return _decode_header(value, defects, hint).strip() if "@" not in value else "", ""
    name, address = found[0]
    return " ".join(_decode_header(name, defects, hint).split()), address


def _ids(value: str) -> tuple[str, ...]:
    found = _MSG_ID.findall(value)
    return tuple(found) if found else tuple(value.split()[:1])


def _date(value: str, defects: list[Defect]) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(defect(DefectCode.DATE_UNREADABLE, value=quote(value, 60)))
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _normalise(text: str, max_chars: int, defects: list[Defect]) -> str:
    text = text[: max_chars * 2].replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text if text.isascii() else unicodedata.normalize("NFC", text)
    if len(text) > max_chars:
        defects.append(defect(DefectCode.TEXT_TRUNCATED, limit=max_chars))
        text = text[:max_chars]
    return text
