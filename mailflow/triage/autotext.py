"""Recognise automatic mail by its text: out-of-office replies and bounces without standard headers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from mailflow.intake.fields import strip_quoted
from mailflow.mail.message import ParsedMessage
from mailflow.textnorm import strip_marks

SHORT_BODY_CHARS = 700  # an out-of-office note is a few lines; a request is longer
TEXT_WINDOW = 4000  # characters of the body read (hostile mail: megabytes of text)

# Phrases that only an auto-responder writes (accents and case folded). "ausente" or
# "de vacaciones" alone are not here: people write them in real travel requests.
OUT_OF_OFFICE = (
    # español
    "fuera de la oficina",
    "fuera de oficina",
    "respuesta automatica",
    "mensaje automatico",
    "contestacion automatica",
    "me encuentro de vacaciones",
    "no estare disponible",
    "acceso limitado a mi correo",
    "acceso limitado al correo",
    # English
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "i am currently away",
    "i am currently out",
    "i'm currently out",
    "away from the office",
    "limited access to email",
    "limited access to my email",
    # português
    "estou fora do escritorio",
    "fora do escritorio",
    "resposta automatica",
    "mensagem automatica",
    "estou de ferias",
    "ausente do escritorio",
    "acesso limitado ao meu e-mail",
    "acesso limitado ao e-mail",
)

# A message could not be delivered, in the languages mail servers answer in.
UNDELIVERED = (
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "delivery has failed",
    "delivery to the following recipient",
    "mail delivery warning",
    "mail delivery failed",
    "message not delivered",
    "undeliverable",
    "permanent error",
    "non remis",
    "n'a pas pu etre remis",
    "impossible de remettre",
    "no se pudo entregar",
    "no se ha podido entregar",
    "no pudo ser entregado",
    "no pudo entregarse",
    "mensaje no entregado",
    "error de entrega",
    "nao foi possivel entregar",
    "nao pode ser entregue",
    "mensagem nao entregue",
    "konnte nicht zugestellt werden",
    "unzustellbar",
    "non e stato possibile recapitare",
    "impossibile recapitare",
)
# Wording only a mail system uses (addressed to the sender of the lost message, or jargon):
# enough on its own. The other phrases need evidence (a person may write "no se pudo entregar").
SYSTEM_WORDING = (
    "your message could not be delivered",
    "your message was not delivered",
    "your message couldn't be delivered",
    "message could not be delivered to",
    "delivery has failed to these recipients",
    "mail delivery warning",
    "mail delivery failed",
    "undeliverable",
    "non remis",
    "votre message n'a pas pu etre remis",
    "su mensaje no se pudo entregar",
    "su mensaje no pudo ser entregado",
    "su mensaje no se ha podido entregar",
    "sua mensagem nao pode ser entregue",
    "sua mensagem nao foi entregue",
    "ihre nachricht konnte nicht zugestellt werden",
)
# Evidence that a delivery report carries the returned message or its status.
RETURNED = re.compile(
    rb"content-type:\s*(?:message/rfc822|text/rfc822-headers|message/delivery-status)"
    rb"|^[ \t]*(?:final-recipient|original-recipient|diagnostic-code|reporting-mta|status:[ \t]*[45]\.)",
    re.I | re.M,
)
# Our own Message-ID or case header quoted back in a body: the returned copy of our reply.
OUR_HEADERS = re.compile(rb"mf\.(?:exp|reg)-\d{4}-\d{6}\.[0-9a-f]+@|x-mailflow-case:", re.I)
SYSTEM_LOCAL = re.compile(
    r"^(?:mailer|mail|mailsystem|mail-?system|postmaster|daemon|bounces?|notify|"
    r"mail-?delivery|delivery|mdaemon|mta|smtp|exchange|nobody)(?:[-_.+].*)?$"
)
_LABELLED_LINE = re.compile(r"^[ \t]*[^\W\d_][^:\n]{1,40}[:：][ \t]*\S", re.M)
_CASE_IN_SUBJECT = re.compile(r"\[EXP-\d{4}-\d{6}\]", re.I)


def fold(text: str) -> str:
    """Lower-case, accents removed, runs of spaces collapsed."""
    plain = strip_marks(unicodedata.normalize("NFKD", text))
    return " ".join(plain.casefold().split())


def first_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The first of `phrases` found in `text` (already folded), or None."""
    return next((p for p in phrases if p in text), None)


def replies_to_us(msg: ParsedMessage, own_domain: str | None) -> bool:
    """Whether the message answers one of our messages: our Message-ID in In-Reply-To or
    References, or our "[EXP-…]" subject tag."""
    if own_domain:
        for ref in (*msg.in_reply_to, *msg.references):
            domain = ref.strip("<> ").rpartition("@")[2].lower()
            if domain == own_domain or domain.endswith("." + own_domain):
                return True
    return _CASE_IN_SUBJECT.search(msg.subject) is not None


def has_request_data(msg: ParsedMessage, body: str) -> bool:
    """Attached documents or two or more "Label: value" lines: what a request carries."""
    if msg.attachments:
        return True
    return len(_LABELLED_LINE.findall(body)) >= 2


def out_of_office(msg: ParsedMessage, own_domain: str | None) -> str | None:
    """An out-of-office reply without RFC 3834 headers (es/en/pt).

    A phrase only auto-responders write is not enough: the message must also answer one of
    ours, be short, ask nothing and carry no request data. When in doubt a person wrote it (it is answered).
    """
    body = strip_quoted(msg.text[:TEXT_WINDOW])
    phrase = first_phrase(fold(body[: SHORT_BODY_CHARS * 2]), OUT_OF_OFFICE)
    if phrase is None:
        return None
    if len(body.strip()) > SHORT_BODY_CHARS or has_request_data(msg, body):
        return None
    if "?" in body or "¿" in body:  # auto-replies state, people ask ("¿puedo enviarlo luego?")
        return None
    if not replies_to_us(msg, own_domain):
        return None
    return (
        f"Respuesta automática de ausencia sin cabeceras («{phrase}»; mensaje breve, "
        "responde a nuestro correo, sin datos de solicitud)"
    )


def undelivered(msg: ParsedMessage, own_domain: str | None) -> str | None:
    """A delivery report without the standard multipart/report structure, in any language.

    The text must say the message could not be delivered, in wording only a mail system uses
    ("su mensaje no se pudo entregar", "non remis", "undeliverable" …), or with something
    showing it is a report: the returned message or its status fields, our own message quoted back, a
    system sender (mailer, postmaster, bounces …), or the phrase in the subject too.
    """
    head = fold(msg.subject)
    text = fold(msg.text[:TEXT_WINDOW])
    phrase = first_phrase(text, UNDELIVERED)  # a phrase in the subject alone: the subject rule
    if phrase is None:
        return None
    local = msg.sender.partition("@")[0]
    evidence = (
        first_phrase(text, SYSTEM_WORDING) is not None
        or first_phrase(head, UNDELIVERED) is not None
        or RETURNED.search(msg.raw[: 1 << 20]) is not None
        or _quotes_our_headers(_body_bytes(msg.raw), own_domain)
        or (bool(local) and SYSTEM_LOCAL.match(local) is not None)
    )
    if not evidence:
        return None
    return f"Aviso de entrega fallida sin estructura estándar («{phrase}»)"


def _quotes_our_headers(body: bytes, own_domain: str | None) -> bool:
    """Our case header, or a Message-ID of our domain quoted back in a body (returned copy)."""
    if OUR_HEADERS.search(body):
        return True
    if not own_domain:
        return False
    ours = re.compile(
        rb"^[ \t]*(?:message-id|in-reply-to|references):[^\n]*@" + re.escape(own_domain.encode()),
        re.I | re.M,
    )
    return ours.search(body) is not None


def _body_bytes(raw: bytes) -> bytes:
    """The bytes after the header block (our address in a body means it was quoted back)."""
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = raw.find(b"\n\n")
    return raw[head_end:][: 1 << 20].lower() if head_end >= 0 else b""
