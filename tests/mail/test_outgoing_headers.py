"""compose() with its cached header classes writes exactly what the stdlib default policy does."""

from __future__ import annotations

import datetime as dt
import email.policy
import re

import pytest

from mailflow.mail import outgoing
from mailflow.mail.outgoing import Attachment, Reply, Thread, compose

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LONG_NAME = "María José Núñez de la Concepción Quispe Huamán, hija de Ñusta " * 2


def _reply(name: str, refs: tuple[str, ...], attachments: list[Attachment]) -> Reply:
    return Reply(
        case_number="EXP-2026-000123",
        tramite_name="Actualización de datos",
        template="observacion",
        text=f"Estimado(a) {name}:\n\nFalta información.\n" + "línea larga " * 30,
        from_addr="mesadepartes@cepr.mailflow.localhost",
        from_name="Mesa de Partes Virtual - CEPR",
        to_addr="juan@example.org",
        to_name=name,
        dedupe_key="1:2:observacion",
        domain="cepr.mailflow.localhost",
        thread=Thread(refs[-1] if refs else None, refs),
        attachments=attachments,
    )


def _bytes(reply: Reply) -> bytes:
    raw = compose(reply, NOW).as_bytes()
    return re.sub(rb"={15}\d+==", b"BOUNDARY", raw)


@pytest.mark.parametrize("name", ["", "Juan Pérez", 'O"Brien, Ana', LONG_NAME])
@pytest.mark.parametrize("refs", [(), tuple(f"m{i}@example.org" for i in range(25))])
def test_same_bytes_as_the_default_policy(
    monkeypatch: pytest.MonkeyPatch, name: str, refs: tuple[str, ...]
) -> None:
    reply = _reply(name, refs, [Attachment("cargo_EXP-2026-000123.pdf", b"%PDF-1.4\n" * 300)])
    cached = _bytes(reply)
    monkeypatch.setattr(outgoing, "POLICY", email.policy.default)
    assert cached == _bytes(reply)
    assert b"=?utf-8?q?Actualizaci=C3=B3n" in cached and cached.count(b"BOUNDARY") >= 4
