"""Who sent a message: a single From: mailbox, authenticated by our receiving server (RFC 8601).

Two questions, answered without network access:

- `from_problem`: is `From:` exactly one mailbox (RFC 5322 §3.6.2 allows several, and groups)?
  A From: with several addresses, a group, no address, or a display name that is itself
  another address cannot say whose case the message belongs to, so it goes to staff.
- `authenticate`: did the receiving server that staff trust (config `security.authserv_id`)
  find a DMARC pass, or a DKIM/SPF pass aligned with the From: domain (RFC 7489 §3.1), in
  the Authentication-Results headers it added (RFC 8601)? Only the topmost run of
  Authentication-Results headers whose authserv-id is trusted counts; the receiving server
  must remove incoming headers that carry its own authserv-id (RFC 8601 §5), as OpenDMARC,
  rspamd and Postfix milters do.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32, default
from email.utils import parseaddr

from mailflow.mail.message import ParsedMessage

HEADER_BYTES = 262_144  # the top header block read for From: (the header guard caps it too)
_COMMENT = re.compile(r"\([^()]*\)")
_ADDRESS_LIKE = re.compile(r"[^\s<>\"'@,;:()]+@[^\s<>\"'@,;:()]+\.[^\s<>\"'@,;:()]+")
_PASS_METHODS = ("dmarc", "dkim", "spf")
# A From: the header parser reads as exactly one mailbox without defects and whose display
# name (ASCII words only) shows no address: "Ana Ruiz <ana.ruiz+1@mail.example.org>" or the
# bare address. Anything else goes through the parser.
_SIMPLE_FROM = re.compile(
    r"(?:[A-Za-z0-9]+(?: [A-Za-z0-9]+)* ?<(?P<addr>{a})>|(?P<bare>{a}))".replace(
        "{a}", r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    )
)
# The same with UTF-8 "Q" encoded words among the display name's words, their escapes all
# non-ASCII bytes: "=?utf-8?Q?Jos=C3=A9_P=C3=A9rez?= <jose@mail.example.org>". Decoded (valid
# UTF-8, else the parser reports a defect and this shortcut is not taken) such a name holds
# letters, digits, spaces and non-ASCII characters only, so it can show no address.
_EW_WORD = r"=\?[Uu][Tt][Ff]-8\?[Qq]\?((?:[A-Za-z0-9_]|=[89A-Fa-f][0-9A-Fa-f])+)\?="
_ENCODED_FROM = re.compile(
    r"(?:[A-Za-z0-9]+|{w})(?: (?:[A-Za-z0-9]+|{w}))* <(?P<addr>{a})>".replace(
        "{w}", _EW_WORD.replace("(", "(?:", 1)
    ).replace("{a}", r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
)
_ENCODED_TEXT = re.compile(_EW_WORD)


@dataclass(frozen=True)
class SenderAuthentication:
    """The verdict on the sender of one message.

    `configured`: a trusted authserv-id is configured (else nobody can be authenticated).
    `authenticated`: the From: domain passed DMARC, or DKIM/SPF aligned with it.
    `method`: "dmarc", "dkim" or "spf" when authenticated. `reason`: Spanish, for staff.
    """

    configured: bool
    authenticated: bool
    method: str | None
    reason: str


def from_problem(msg: ParsedMessage) -> str | None:
    """Why `msg`'s From: is not exactly one mailbox (Spanish), or None when it is.

    Reads the raw header (encoded words undecoded, so a display name cannot inject syntax),
    then the decoded display name for an address that differs from the mailbox.
    """
    return raw_from_problem(msg.raw, msg.sender_name)


def raw_from_problem(raw_message: bytes, sender_name: str = "") -> str | None:
    """`from_problem` on a raw message (what `mailflow check` has), `sender_name` being the
    parser's decoded display name when known."""
    try:
        head = BytesHeaderParser(policy=compat32).parsebytes(_top_block(raw_message))
        values = [str(v) for v in head.get_all("From") or []]
    except Exception:
        values = []
    if len(values) != 1:
        count = "ningún" if not values else f"{len(values)}"
        return f"Remitente ambiguo: el mensaje tiene {count} encabezado(s) From:"
    raw = " ".join(values[0].split())
    simple = _SIMPLE_FROM.fullmatch(raw)
    if simple is not None:  # plain words and one dot-atom address: what the parser finds
        return _named_other((simple["addr"] or simple["bare"]).lower(), sender_name, "")
    encoded = _ENCODED_FROM.fullmatch(raw)
    if encoded is not None and _valid_utf8_words(raw):  # the same, with encoded words
        return _named_other(encoded["addr"].lower(), sender_name, "")
    try:
        parsed = default.header_factory("from", raw)
        groups = parsed.groups
        strange = bool(parsed.defects)  # e.g. two angle-addresses, text around an address
    except Exception:
        return f"Remitente ilegible: From: {raw[:120]}"
    if any(g.display_name is not None for g in groups):
        return f"Remitente ambiguo: From: es un grupo de direcciones ({raw[:120]})"
    addresses = [a for g in groups for a in g.addresses]
    if len(addresses) != 1 or strange:
        return f"Remitente ambiguo: From: no es exactamente una dirección ({raw[:120]})"
    mailbox = addresses[0].addr_spec.lower()
    if "@" not in mailbox:
        return f"Remitente sin dirección válida: From: {raw[:120]}"
    return _named_other(mailbox, sender_name, addresses[0].display_name)


def _valid_utf8_words(raw: str) -> bool:
    """Whether every UTF-8 "Q" encoded word in `raw` decodes as valid UTF-8."""
    try:
        for text in _ENCODED_TEXT.findall(raw):
            binascii.a2b_qp(text, header=True).decode("utf-8")
    except (ValueError, binascii.Error):
        return False
    return True


def _top_block(raw: bytes) -> bytes:
    """The first HEADER_BYTES bytes of `raw` cut after its first blank line: the header parser
    ends the header block there or before, so it reads the same headers without walking the
    body line by line (megabytes of base64)."""
    head = raw[:HEADER_BYTES]
    ends = [i + len(sep) for sep in (b"\n\n", b"\n\r\n") if (i := head.find(sep)) >= 0]
    return head[: min(ends)] if ends else head


def _named_other(mailbox: str, sender_name: str, display_name: str) -> str | None:
    """The ambiguity of a From: whose visible name shows another address than `mailbox`."""
    named = {a.lower().rstrip(".") for a in _ADDRESS_LIKE.findall(sender_name or "")}
    named |= {a.lower().rstrip(".") for a in _ADDRESS_LIKE.findall(display_name)}
    others = sorted(named - {mailbox})
    if others:
        return (
            f"Remitente ambiguo: el nombre visible muestra la dirección {others[0]} pero el "
            f"mensaje viene de {mailbox}"
        )
    return None


def header_sender(raw: bytes) -> str:
    """The lower-cased address of the first From: of a raw message, or "" (never raises)."""
    try:
        head = BytesHeaderParser(policy=compat32).parsebytes(_top_block(raw))
        return parseaddr(" ".join(str(head.get("From", "")).split()))[1].strip().lower()
    except Exception:
        return ""


def authenticate(msg: ParsedMessage, trusted: tuple[str, ...]) -> SenderAuthentication:
    """Judge `msg`'s sender from the Authentication-Results headers of trusted servers.

    `trusted` are the authserv-ids of our own receiving servers (case-insensitive). Returns
    a SenderAuthentication; never raises.
    """
    ids = {t.strip().lower() for t in trusted if t.strip()}
    if not ids:
        return SenderAuthentication(
            False, False, None, "remitente no autenticado: no hay servidor de confianza configurado"
        )
    domain = msg.sender.rpartition("@")[2].lower()
    results = _trusted_results(msg.headers.get("authentication-results", ()), ids)
    if not results:
        return SenderAuthentication(
            True, False, None, "remitente no autenticado: el servidor de confianza no lo verificó"
        )
    if any(m == "dmarc" and r == "fail" for m, r, _ in results):
        return SenderAuthentication(
            True, False, None, f"remitente no autenticado: DMARC falló para {domain}"
        )
    for method in _PASS_METHODS:
        for name, result, props in results:
            if name != method or result != "pass":
                continue
            claimed = _claimed_domain(method, props) or (domain if method == "dmarc" else "")
            if _aligned(domain, claimed):
                return SenderAuthentication(
                    True, True, method, f"remitente autenticado ({method.upper()} de {domain})"
                )
    return SenderAuthentication(
        True, False, None, f"remitente no autenticado: ninguna verificación alineada con {domain}"
    )


Result = tuple[str, str, dict[str, str]]  # (method, result, {ptype.property: value})


def _trusted_results(headers: tuple[str, ...], ids: set[str]) -> list[Result]:
    """Results of the topmost Authentication-Results headers whose authserv-id is trusted."""
    found: list[Result] = []
    for value in headers:  # top of the message first
        authserv, results = _parse(value)
        if authserv not in ids:
            break
        found.extend(results)
    return found


def _parse(value: str) -> tuple[str, list[Result]]:
    """(authserv-id, results) of one Authentication-Results value (RFC 8601 §2.2)."""
    text = " ".join(value.split())
    for _ in range(5):  # nested comments: a few levels are enough, then give up on them
        text = _COMMENT.sub(" ", text)
    head, *items = text.split(";")
    words = head.split()
    authserv = words[0].lower() if words else ""
    results: list[Result] = []
    for item in items:
        tokens = item.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props: dict[str, str] = {}
        for token in tokens[1:]:
            key, sep, val = token.partition("=")
            if sep:
                props[key.lower()] = val.strip('"').lower()
        results.append((method.split("/")[0].lower(), result.lower(), props))
    return authserv, results


def _claimed_domain(method: str, props: dict[str, str]) -> str:
    if method == "dmarc":
        return props.get("header.from", "")
    if method == "dkim":
        return props.get("header.d", "") or props.get("header.i", "").rpartition("@")[2]
    return props.get("smtp.mailfrom", "").rpartition("@")[2]  # HELO is no DMARC identifier


def _aligned(from_domain: str, other: str) -> bool:
    """Relaxed alignment (RFC 7489 §3.1), approximated without the public-suffix list: equal
    domains, or one a subdomain of the other where the shorter has at least two labels."""
    a, b = from_domain.strip(".").lower(), other.strip(".").lower()
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return short.count(".") >= 1 and long_.endswith("." + short)
