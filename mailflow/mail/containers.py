"""Open the containers mail clients wrap content in: Outlook TNEF and opaque S/MIME signed-data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from asn1crypto import cms

from mailflow.mail.defects import Defect, DefectCode, defect

for _name in ("tnefparse", "tnef"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

MAX_CONTAINER_DEPTH = 3  # winmail.dat inside a forwarded message inside signed-data is enough
MAX_CONTAINER_FILES = 50  # files taken out of one winmail.dat
MAX_MESSAGE_ATTRIBUTES = 64  # message-level TNEF attributes read (a real one has about 20)
_ATTACH_RENDDATA = 0x9002  # attAttachRendData: starts each attachment (MS-OXTNEF 2.1.3.3)
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_PKCS7_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


@dataclass(frozen=True)
class Opened:
    """What a container held: body texts, files (name, content type, bytes), an inner MIME
    entity to parse as the message itself (S/MIME), and problems found (`Defect`s)."""

    texts: tuple[str, ...] = ()
    files: tuple[tuple[str, str, bytes], ...] = ()
    mime: bytes | None = None
    defects: tuple[Defect, ...] = field(default_factory=tuple)


def kind_of(ctype: str, filename: str) -> str | None:
    """ "tnef", "pkcs7" or None for a part with this content type and file name."""
    name = filename.lower()
    if ctype in _TNEF_TYPES or name == "winmail.dat" or name.endswith(".tnef"):
        return "tnef"
    if ctype in _PKCS7_TYPES or name.endswith(".p7m"):
        return "pkcs7"
    return None


def open_container(kind: str, data: bytes, max_bytes: int) -> Opened:
    """Unwrap one container part's decoded bytes; never raises (problems become defects).

    `max_bytes` bounds each file taken out of it (the message's attachment limit).
    """
    try:
        if kind == "tnef":
            return _open_tnef(data, max_bytes)
        return _open_pkcs7(data, max_bytes)
    except Exception:  # any damage: the container is reported, the rest of the mail is read
        what = "winmail.dat (TNEF)" if kind == "tnef" else "S/MIME (PKCS #7)"
        return Opened(defects=(defect(DefectCode.CONTAINER_DAMAGED, what=what),))


def _compact_tnef(data: bytes) -> tuple[bytes, int]:
    """The TNEF stream cut down to its message attributes and first `MAX_CONTAINER_FILES`
    attachments, and how many attachments were dropped. One linear walk over the attribute
    headers (MS-OXTNEF: level u8, id u16, type u16, length u32, data, checksum u16): tnefparse
    copies the rest of the stream for every attribute, so it must never see thousands."""
    kept = [data[:6]]
    offset, files, messages = 6, 0, 0
    while offset + 11 <= len(data):
        level = data[offset]
        name = int.from_bytes(data[offset + 1 : offset + 3], "little")
        length = int.from_bytes(data[offset + 5 : offset + 9], "little")
        end = min(len(data), offset + 11 + length)
        if name == _ATTACH_RENDDATA:
            files += 1
        if level == 2 and 0 < files <= MAX_CONTAINER_FILES:
            kept.append(data[offset:end])
        elif level != 2 and messages < MAX_MESSAGE_ATTRIBUTES:
            messages += 1
            kept.append(data[offset:end])
        offset = end
    return b"".join(kept), max(0, files - MAX_CONTAINER_FILES)


def _open_tnef(data: bytes, max_bytes: int) -> Opened:
    from tnefparse.tnef import TNEF  # imported on use: most mail has no TNEF

    compact, dropped = _compact_tnef(data)
    tnef = TNEF(compact)
    texts: list[str] = []
    if tnef.body:
        texts.append(_text(tnef.body))
    elif getattr(tnef, "htmlbody", None):
        from mailflow.mail.htmltext import html_to_text

        texts.append(html_to_text(_text(tnef.htmlbody)))
    files: list[tuple[str, str, bytes]] = []
    defects: list[Defect] = []
    if dropped:
        count = dropped + MAX_CONTAINER_FILES
        defects.append(
            defect(DefectCode.TNEF_TOO_MANY_FILES, count=count, limit=MAX_CONTAINER_FILES)
        )
    for index, att in enumerate(tnef.attachments[:MAX_CONTAINER_FILES], 1):
        try:
            name = att.long_filename() or att.name
        except Exception:
            name = att.name
        name = _text(name).strip("\x00 ") or f"adjunto-tnef-{index}"
        payload = bytes(att.data or b"")
        if len(payload) > max_bytes:
            defects.append(defect(DefectCode.TNEF_FILE_TOO_BIG, name=name))
            continue
        ctype = "application/pdf" if payload[:5] == b"%PDF-" else "application/octet-stream"
        files.append((name, ctype, payload))
    return Opened(tuple(texts), tuple(files), None, tuple(defects))


def _open_pkcs7(data: bytes, max_bytes: int) -> Opened:
    if data.lstrip()[:1] not in (b"0",):  # DER starts with a SEQUENCE (0x30)
        import base64
        import binascii

        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            return Opened(defects=(defect(DefectCode.SMIME_UNREADABLE),))
    info = cms.ContentInfo.load(data)
    kind = info["content_type"].native
    if kind == "enveloped_data":
        return Opened(defects=(defect(DefectCode.SMIME_ENCRYPTED),))
    if kind != "signed_data":
        return Opened(defects=(defect(DefectCode.SMIME_UNSUPPORTED, kind=kind),))
    inner = info["content"]["encap_content_info"]["content"]
    payload = inner.native if inner is not None else None
    if not isinstance(payload, bytes | bytearray) or not payload:
        return Opened(defects=(defect(DefectCode.SMIME_DETACHED),))
    if len(payload) > max_bytes:
        return Opened(defects=(defect(DefectCode.SMIME_TOO_BIG),))
    return Opened(mime=bytes(payload))


def _text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    for encoding in ("utf-8", "cp1252"):
        try:
            return value.decode(encoding).replace("\x00", "")
        except UnicodeDecodeError:
            continue
    return value.decode("latin-1").replace("\x00", "")
