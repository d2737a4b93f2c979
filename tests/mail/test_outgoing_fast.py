"""compose_fast() writes exactly the bytes compose() (the stdlib's EmailMessage) writes."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import random
import re

import pytest

from mailflow.mail import outgoing
from mailflow.mail.outgoing import Attachment, Reply, Thread, compose, compose_fast

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LONG_NAME = "María José Núñez de la Concepción Quispe Huamán, hija de Ñusta " * 2
NAMES = ["", "Juan Pérez", "Juan Perez", 'O"Brien, Ana', "Ana (hija)", "Zoë Ñ. López", LONG_NAME]
TEXTS = [
    "Estimado(a) Juan:\n\nFalta información.\n",
    "ascii only\n\nok\n",
    "Hola " + "línea larga " * 40 + "\n",  # a long line: quoted-printable
    "\n".join(["ñandú " * 20] * 12) + "\n",  # more than ten long lines
    'Tab\tand <b>html</b> & "quotes"\r\nCRLF line\n\n\n\nextra blank lines\n',
    "=?utf-8?q?no_es_una_palabra?= codificada\n",
    "€" * 80 + "\n",  # base64 is shorter
]
TRAMITES = ["Actualización de datos", "Prórroga de residencia", "Renuncia", "Á" * 70]
ATTACHMENTS = [
    (),
    (Attachment("cargo_EXP-2026-000123.pdf", b"%PDF-1.4\n" * 300),),
    (Attachment("oficio.pdf", b""), Attachment("notas.txt", b"hola\n", "text/plain")),
    (Attachment("cargó de recepción de un nombre largo para plegar.pdf", b"%PDF" * 20),),
    (Attachment("x" * 80 + ".pdf", b"%PDF"),),
]
THREADS = [
    Thread(),
    Thread("req-1@example.org", ("req-1@example.org",)),
    Thread("req-9@example.org", tuple(f"m{i}@example.org" for i in range(25))),
    Thread(None, ("root@example.org", "root@example.org", "")),
]


def _numbered(raw: bytes) -> bytes:
    """Boundaries renamed B0, B1… in order of appearance (they are random)."""
    seen: dict[bytes, bytes] = {}
    return re.sub(rb"={15}\d+==", lambda m: seen.setdefault(m[0], b"B%d" % len(seen)), raw)


def _cases() -> list[Reply]:
    rng = random.Random(18)
    replies = []
    for i in range(120):
        to = rng.choice(["juan@example.org", "a.b+c_d@sub.example.pe", "sin-arroba", "Ñ@x.pe"])
        replies.append(
            Reply(
                case_number=rng.choice(["EXP-2026-000123", "EXP-2027-999999", "MSG-7"]),
                tramite_name=rng.choice(TRAMITES),
                template=rng.choice(["observacion", "acuse_recibo", "cargo_enviado", "nuevo"]),
                text=rng.choice(TEXTS),
                from_addr="mesadepartes@cepr.mailflow.localhost",
                from_name=rng.choice(
                    ["Mesa de Partes Virtual - CEPR", "Mesa de Partes - Migración"]
                ),
                to_addr=to,
                to_name=rng.choice(NAMES),
                dedupe_key=f"{i}:2:x",
                domain="cepr.mailflow.localhost",
                thread=rng.choice(THREADS),
                attachments=rng.choice(ATTACHMENTS),
                nonce=rng.choice(["", "9f3a0c1d2e4b"]),
            )
        )
    return replies


@pytest.mark.parametrize("reply", _cases())
def test_same_bytes_and_headers_as_compose(reply: Reply) -> None:
    try:
        slow = compose(reply, NOW)
    except Exception as exc:  # e.g. a non-ASCII address with a name: the same error
        with pytest.raises(type(exc)):
            compose_fast(reply, NOW)
        return
    fast = compose_fast(reply, NOW)
    assert _numbered(fast.as_bytes()) == _numbered(slow.as_bytes())
    for name in ("Subject", "From", "To", "Date", "Message-ID", "References", "X-Mailflow-Case"):
        assert fast[name] == (None if slow[name] is None else str(slow[name])), name


def test_the_same_reply_twice_from_the_cache() -> None:
    reply = _cases()[0]
    first, second = compose_fast(reply, NOW), compose_fast(reply, NOW)
    assert _numbered(first.as_bytes()) == _numbered(second.as_bytes())
    assert first.as_bytes() != second.as_bytes()  # fresh boundaries each time


def test_a_boundary_already_in_the_text_is_changed_like_the_stdlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clash = "=" * 15 + "0" * 19 + "=="
    monkeypatch.setattr(outgoing.random, "randrange", lambda _n: 0)
    text = f"--{clash}\n--{clash}.0\n"
    assert outgoing._boundary(text.encode()) == f"{clash}.1"
    reply = _cases()[0]
    parsed = email.message_from_bytes(
        compose_fast(Reply(**{**reply.__dict__, "text": text}), NOW).as_bytes(),
        policy=email.policy.default,
    )
    assert parsed.get_body(("plain",)).get_content().startswith(f"--{clash}\n")  # type: ignore[union-attr]
