"""Decoding header and body text: charsets, RFC 2047 words, RFC 2231 parameters, addresses,
Message-IDs and dates. Pure functions; none raises on hostile input (problems become defects)."""

from __future__ import annotations

import binascii
import datetime as dt
import email.message
import email.utils
import re
from functools import lru_cache
from typing import Any

from mailflow.mail.charsets import decode_unlabelled
from mailflow.mail.defects import Defect, DefectCode, defect
from mailflow.reasons import quote

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*?)\?=")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_CHARSET_OK = re.compile(r"[a-z0-9_\-.:]{1,40}")
_UTF8 = frozenset({"utf-8", "utf8", "unicode-1-1-utf-8"})
_LATIN = frozenset(
    {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "cp1252", "windows-1252"}
)
_ALIASES = {"utf8": "utf-8", "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "gb2312": "gbk"}


def declared_charset(content_type: str) -> str | None:
    """The charset a Content-Type value declares when it is neither Latin nor UTF-8 (and looks
    like a charset name), lower-case with aliases resolved; else None. Raw 8-bit headers of a
    message whose text is in such a charset (Shift_JIS, say) are most likely in it too."""
    _, params = header_params(content_type)
    label = str(params.get("charset") or "").strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    if label and label not in _LATIN and label not in _UTF8 and _CHARSET_OK.fullmatch(label):
        return label
    return None


def decode_bytes(
    data: bytes, label: str | None, defects: list[Defect], *, detect: bool = True
) -> str:
    """Decode with the declared charset `label`; fall back to utf-8, then windows-1252, then
    latin-1. Unlabelled text is detected (`charsets.decode_unlabelled`) when `detect`, else read
    leniently. Never raises: a wrong or unknown label appends a defect to `defects`."""
    charset = (label or "").strip().strip("\"'").lower()
    charset = _ALIASES.get(charset, charset)
    if not charset:
        return decode_unlabelled(data) if detect else lenient(data)
    if charset in _LATIN:
        return lenient(data)  # ascii/latin-1 labels often hide utf-8 or windows-1252
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


def _cp1252(data: bytes) -> str:
    """windows-1252, else latin-1 (never raises)."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def lenient(data: bytes) -> str:
    """Bytes of unknown encoding as text: UTF-8, else windows-1252, else latin-1 (never raises)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _cp1252(data)


def decode_header(value: str, defects: list[Defect], hint: str | None = None) -> str:
    """A raw header value (one character per byte) as text: RFC 2047 words decoded; raw 8-bit
    bytes read as UTF-8, else in the body's declared charset (`hint`), else detected
    (`charsets.decode_unlabelled`). Never raises: a broken word appends a defect to `defects`."""
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
        decode_unlabelled(d, hint) if c is None else decode_bytes(d, c, defects) for d, c in chunks
    )


_KEPT_CHARS = 1000  # longer header values are parsed every time, never kept


def header_params(value: str) -> tuple[str, dict[str, Any]]:
    """A structured header value split into (main value, {lower-case parameter: value});
    RFC 2231 parameters come back as (charset, language, text) tuples. ("", {}) for "";
    never raises (an unreadable value gives its text before the first ";" and {})."""
    if not value:
        return "", {}
    parse = _header_params if len(value) <= _KEPT_CHARS else _header_params.__wrapped__
    main, params = parse(value)
    return main, dict(params)  # the caller's own dict: the cached one stays as it was


@lru_cache(maxsize=256)
def _header_params(value: str) -> tuple[str, dict[str, Any]]:
    """`header_params` of a non-empty value, kept: a few Content-Type and
    Content-Disposition values ("text/plain; charset=utf-8") recur in most messages."""
    holder = email.message.Message()
    holder["x"] = value
    try:
        items = holder.get_params(header="x") or []
    except Exception:
        return value.split(";")[0].strip(), {}
    main = str(items[0][0]) if items else ""
    return main.strip(), {str(k).lower(): v for k, v in items[1:]}


def param_text(value: Any, defects: list[Defect]) -> str:
    """A parameter value (from `header_params`) as text: an RFC 2231 tuple decoded with its
    charset, else RFC 2047 words decoded; "" for None or "". Problems are appended to `defects`."""
    if isinstance(value, tuple) and len(value) == 3:
        return decode_bytes(str(value[2]).encode("latin-1", "replace"), value[0], defects)
    return decode_header(str(value), defects) if value else ""


def addresses(value: str) -> list[tuple[str, str]]:
    """The (display name, lower-case address) pairs of an address header; entries without "@"
    or with spaces in the address are dropped; [] when unreadable (never raises)."""
    if len(value) > _KEPT_CHARS:
        return list(_addresses.__wrapped__(value))
    return list(_addresses(value))


@lru_cache(maxsize=256)
def _addresses(value: str) -> tuple[tuple[str, str], ...]:
    """`addresses` of `value`, kept: the To: of most messages is one of our own mailboxes."""
    try:
        found = email.utils.getaddresses([value])
    except Exception:
        return ()
    return tuple((n, a.strip().lower()) for n, a in found if "@" in a and " " not in a.strip())


def address(value: str, defects: list[Defect], hint: str | None = None) -> tuple[str, str]:
    """The first (decoded display name, lower-case address) of an address header; ("", "") or
    (the decoded text, "") when it holds no address. `hint` as in `decode_header`."""
    found = addresses(value)
    if not found:
        return decode_header(value, defects, hint).strip() if "@" not in value else "", ""
    name, found_address = found[0]
    return " ".join(decode_header(name, defects, hint).split()), found_address


def message_ids(value: str) -> tuple[str, ...]:
    """The Message-IDs in a Message-ID/In-Reply-To/References value, without angle brackets;
    failing any, its first word (or ())."""
    found = _MSG_ID.findall(value)
    return tuple(found) if found else tuple(value.split()[:1])


def header_date(value: str, defects: list[Defect]) -> dt.datetime | None:
    """A Date header as an aware datetime (UTC assumed when it names no zone); None when
    empty or unreadable (a DATE_UNREADABLE defect is appended to `defects`)."""
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
