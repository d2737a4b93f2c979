"""From: is the only identity: one mailbox, authenticated by a trusted server before it changes data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.cases.followup_policy import merge_follow_up
from mailflow.config import SecuritySettings
from mailflow.mail.authentication import authenticate, from_problem
from mailflow.mail.parse import parse_message
from mailflow.ops.checking import check_bytes
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, CaseMessage, InboxMessage
from mailflow.web.queue import load_rows
from tests.support.cases_support import APPLICANT, DATOS, MONDAY, mail, make_app, outbox
from tests.support.cases_support import process as _process

TUESDAY = MONDAY + dt.timedelta(days=1)
TRUSTED = "mx.cepr.example"
SIN_NACIONALIDAD = "\n".join(line for line in DATOS.splitlines() if "Nacionalidad" not in line)


def _app(tmp_path: Path, db: Database, *trusted: str) -> App:
    return make_app(tmp_path, db, security=SecuritySettings(authserv_id=trusted))


def _case(app: App, case_id: int | None) -> Case:
    with app.database.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def _events(app: App, row: InboxMessage) -> list[CaseEvent]:
    with app.database.session(readonly=True) as s:
        stmt = select(CaseEvent).where(CaseEvent.inbox_message_id == row.id)
        return list(s.scalars(stmt).all())


def _observed(app: App) -> tuple[Case, str]:
    request = mail("Actualización de datos", SIN_NACIONALIDAD)
    if app.settings.security.authserv_id:  # an identity-changing request: authenticated
        request = f"Authentication-Results: {TRUSTED}; dmarc=pass\r\n".encode() + request
    row = _process(app, request)
    assert row.disposition == "observe"
    with app.database.session(readonly=True) as s:
        [out] = outbox(s)
    return _case(app, row.case_id), out.message_id


def _reply(our_id: str, body: str, *auth_results: str) -> bytes:
    raw = mail("RE: Observación", body, in_reply_to=f"<{our_id}>")
    added = b"".join(f"Authentication-Results: {a}\r\n".encode() for a in auth_results)
    return added + raw


def test_forged_reply_adds_missing_values_but_changes_go_to_staff(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db)  # the demo: no trusted server, nobody authenticated
    case, our_id = _observed(app)
    assert case.fields["telefono"] == "+51987654321"
    forged = _reply(
        our_id, "Nacionalidad: venezolana\nTeléfono: 911111111\nNombres y apellidos: Otro Señor\n"
    )
    row = _process(app, forged, TUESDAY)
    after = _case(app, case.id)
    assert (row.disposition, row.case_id) == ("review", None)  # in the staff queue
    with app.database.session(readonly=True) as s:
        [item] = [i for i in load_rows(s) if i.kind == "mensaje"]
        assert item.id == row.id and "datos por confirmar" in item.reason
        thread = s.scalars(
            select(CaseMessage.inbox_message_id).where(CaseMessage.case_id == case.id)
        )
        assert row.id in set(thread)  # still part of the case's thread
    assert after.fields["nacionalidad"]  # added: the subsanación flow keeps working
    assert after.fields["telefono"] == "+51987654321"  # never overwritten silently
    assert after.fields["nombres_apellidos"] == case.fields["nombres_apellidos"]
    [held] = [e for e in _events(app, row) if e.kind == "exception"]
    assert "«+51987654321» → «+51911111111»" in held.reason
    assert "Otro Señor" in held.reason
    assert held.data["merge"]["held"]["telefono"] == {
        "anterior": "+51987654321", "propuesto": "+51911111111",
    }  # fmt: skip


def test_with_a_trusted_server_an_unauthenticated_reply_changes_nothing(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db, TRUSTED)
    case, our_id = _observed(app)
    forged = _reply(
        our_id, "Nacionalidad: venezolana\n", f"{TRUSTED}; dmarc=fail header.from=example.org"
    )
    row = _process(app, forged, TUESDAY)
    after = _case(app, case.id)
    assert row.disposition == "review"
    assert (after.state, after.fields) == ("observado", case.fields)
    [held] = [e for e in _events(app, row) if e.kind == "exception"]
    assert "DMARC falló" in held.reason and "no se aplicó nada" in held.reason


def test_an_authenticated_reply_changes_data_keeping_the_previous_value(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db, TRUSTED)
    case, our_id = _observed(app)
    signed = _reply(
        our_id,
        "Nacionalidad: venezolana\nTeléfono: 911111111\n",
        f"{TRUSTED}; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org "
        "header.s=sel; dmarc=pass header.from=example.org",
    )
    row = _process(app, signed, TUESDAY)
    after = _case(app, case.id)
    assert (row.disposition, after.state) == ("accept", "en_tramite")
    assert after.fields["telefono"] == "+51911111111"
    [intake] = [e for e in _events(app, row) if e.kind == "intake"]
    assert intake.data["decision"]["changed"]["telefono"]["anterior"] == "+51987654321"
    assert "autenticado (DMARC" in intake.data["decision"]["sender"]


def test_identity_fields_need_staff_even_from_an_authenticated_sender(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db, TRUSTED)
    case, our_id = _observed(app)
    signed = _reply(
        our_id,
        "Nacionalidad: venezolana\nNombres y apellidos: Otro Señor\n",
        f"{TRUSTED}; dkim=pass header.d=example.org",
    )
    row = _process(app, signed, TUESDAY)
    after = _case(app, case.id)
    assert row.disposition == "review" and after.state == "en_tramite"
    assert after.fields["nombres_apellidos"] == case.fields["nombres_apellidos"]


@pytest.mark.parametrize(
    "sender_header",
    [
        f'"{APPLICANT}" <intruso@evil.example>',
        f"{APPLICANT} <intruso@evil.example>",
        f"{APPLICANT}, intruso@evil.example",
        f"grupo: {APPLICANT};",
        "Juan Pérez",
    ],
)
def test_a_from_that_is_not_exactly_one_mailbox_goes_to_staff(
    tmp_path: Path, sqlite_db: Database, sender_header: str
) -> None:
    app = _app(tmp_path, sqlite_db)
    raw = mail("Actualización de datos", DATOS).replace(
        b"From: Juan =?utf-8?q?P=C3=A9rez?= <juan.perez@example.org>",
        f"From: {sender_header}".encode(),
    )
    assert f"From: {sender_header}".encode() in raw
    row = _process(app, raw)
    assert (row.disposition, row.case_id) == ("review", None)
    [event] = _events(app, row)
    assert event.kind == "exception" and "Remitente" in event.reason
    with app.database.session(readonly=True) as s:
        assert s.scalar(select(func.count(Case.id))) == 0
    # `mailflow check` says what production does
    decided = check_bytes(app, raw)
    assert decided.disposition == "review" and "remitente_ambiguo" in decided.checks


def test_an_unauthenticated_identity_change_request_goes_to_staff(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db, TRUSTED)
    row = _process(app, mail("Actualización de datos", DATOS))
    assert row.disposition == "review" and _case(app, row.case_id).state == "en_revision"


def test_a_strangers_reused_message_id_is_never_attached_to_the_case(
    tmp_path: Path, sqlite_db: Database
) -> None:
    app = _app(tmp_path, sqlite_db)
    first = _process(app, mail("Actualización de datos", DATOS, message_id="<m1@example.org>"))
    assert first.case_id is not None
    stranger = mail(
        "Actualización de datos",
        "hola",
        sender="intruso@evil.example",
        message_id="<m1@example.org>",
    )
    row = _process(app, stranger, TUESDAY)
    assert (row.disposition, row.case_id) == ("review", None)
    [event] = _events(app, row)
    assert event.case_id is None and "otro remitente" in event.reason


def _auth(*results: str, sender: str = APPLICANT, trusted: tuple[str, ...] = (TRUSTED,)) -> str:
    head = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    msg = parse_message(f"{head}From: {sender}\r\nSubject: x\r\n\r\nhola".encode())
    verdict = authenticate(msg, trusted)
    return verdict.method if verdict.authenticated else "no"


def test_authentication_results_are_read_only_from_the_topmost_trusted_headers() -> None:
    assert _auth(f"{TRUSTED}; dmarc=pass header.from=example.org") == "dmarc"
    assert _auth(f"{TRUSTED.upper()} 1; dkim=pass (good) header.d=mail.example.org") == "dkim"
    assert _auth(f"{TRUSTED}; spf=pass smtp.mailfrom=bounce@example.org") == "spf"
    assert _auth(f"{TRUSTED}; dkim=pass header.d=evil.example") == "no"  # not aligned
    assert _auth(f"{TRUSTED}; dkim=pass header.d=org") == "no"  # a bare suffix aligns nothing
    assert _auth("mx.evil.example; dmarc=pass header.from=example.org") == "no"
    assert _auth(f"{TRUSTED}; dmarc=pass", trusted=()) == "no"  # nothing configured
    assert (
        _auth(f"{TRUSTED}; dmarc=fail header.from=example.org; dkim=pass header.d=example.org")
        == "no"
    )
    # a header forged by the sender sits below an untrusted hop's: it does not count
    assert _auth("relay.other.example; none", f"{TRUSTED}; dmarc=pass") == "no"
    assert _auth(f"{TRUSTED}; none") == "no"


def test_from_problem_accepts_ordinary_senders() -> None:
    for value in ("Ana Pérez <ana@x.org>", '"Pérez, Ana" <ana@x.org>', "ana@x.org (Ana)",
                  '"ana@x.org" <ana@x.org>', "=?utf-8?Q?Ana_P=C3=A9rez?= <ana@x.org>"):  # fmt: skip
        msg = parse_message(f"From: {value}\r\nSubject: x\r\n\r\nhola".encode())
        assert from_problem(msg) is None, value


def test_merge_policy_is_pure_and_keeps_previous_values() -> None:
    from mailflow.mail.authentication import SenderAuthentication

    nobody = SenderAuthentication(False, False, None, "sin servidor")
    merge = merge_follow_up({"telefono": "1"}, {"telefono": "2", "motivo": "m"}, nobody)
    assert merge.fields == {"telefono": "1", "motivo": "m"}
    assert merge.held == {"telefono": ("1", "2")} and not merge.blocked


def test_forged_requests_cannot_use_up_the_authenticated_senders_reply_cap(
    tmp_path: Path, sqlite_db: Database
) -> None:
    base = _app(tmp_path, sqlite_db, TRUSTED)
    replies = base.settings.replies.model_copy(update={"daily_cap_per_address": 2})
    app = make_app(tmp_path, sqlite_db, security=base.settings.security, replies=replies)
    # forged: no Authentication-Results from our server; messages staff must read get an
    # acknowledgment each (issue 10), under the daily cap (filings are never capped)
    for i in range(3):
        _process(app, mail(f"Consulta {i}", "Quisiera saber sobre mis papeles, gracias."))
    with app.database.session(readonly=True) as s:
        assert len(outbox(s)) == 2  # the forger hit the cap for unauthenticated mail
    genuine = f"Authentication-Results: {TRUSTED}; dmarc=pass\r\n".encode() + mail(
        "Consulta", "Quisiera saber sobre mis papeles, gracias."
    )
    row = _process(app, genuine)
    with app.database.session(readonly=True) as s:
        mine = [o for o in outbox(s) if o.inbox_message_id == row.id]
    assert len(mine) == 1 and mine[0].sender_authenticated  # the real applicant is answered


def test_a_plain_from_reads_as_the_header_parser_reads_it() -> None:
    """Plain words and one dot-atom address skip the header parser: same verdicts as the
    parser gives for the same mailbox with a quoted name (which it must parse)."""
    from mailflow.mail.authentication import raw_from_problem

    for address in ("ana.ruiz+1@mail.example.org", "a_b-c@x-y.example.pe", "ANA@EXAMPLE.ORG"):
        for shown in ("", "Ana Ruiz", "otro@evil.example", f"Ana ({address})"):
            plain = raw_from_problem(f"From: Ana Ruiz <{address}>\r\n\r\nx".encode(), shown)
            quoted = raw_from_problem(f'From: "Ana Ruiz" <{address}>\r\n\r\nx'.encode(), shown)
            bare = raw_from_problem(f"From: {address}\r\n\r\nx".encode(), shown)
            assert plain == quoted == bare


def _parser_from_problem(value: str, sender_name: str) -> str | None:
    """The header parser's verdict on one From: value: `raw_from_problem` without shortcuts."""
    from email.policy import default

    from mailflow.mail.authentication import _named_other

    raw = " ".join(value.split())
    parsed = default.header_factory("from", raw)
    if any(g.display_name is not None for g in parsed.groups):
        return "group"
    addresses = [a for g in parsed.groups for a in g.addresses]
    if len(addresses) != 1 or parsed.defects or "@" not in addresses[0].addr_spec:
        return "not one mailbox"
    return _named_other(addresses[0].addr_spec.lower(), sender_name, addresses[0].display_name)


def test_an_encoded_name_reads_as_the_header_parser_reads_it() -> None:
    """UTF-8 "Q" encoded words in the display name skip the header parser only when the
    parser would find one mailbox, no defect and no address in the decoded name."""
    import random

    from mailflow.mail.authentication import _ENCODED_FROM, raw_from_problem

    rng = random.Random(18)
    texts = ["José", "Ñuñez", "Ana María", "ü", "日本", "a@b.example", "x＠y.example", "ok"]
    pieces = [*texts, "\udcff", "é\udcc3"]  # lone surrogates: bytes that are not UTF-8

    def q(text: str) -> str:
        data = text.encode("utf-8", "surrogateescape")
        out = "".join(
            chr(b) if chr(b).isalnum() and b < 128 else "_" if b == 32 else f"={b:02X}"
            for b in data
        )
        return out.lower() if rng.random() < 0.2 else out

    shortcut = 0
    for _ in range(3000):
        words = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.3:
                words.append(rng.choice(["Ana", "Ruiz", "P3rez", "X"]))
            else:
                charset = rng.choice(["utf-8", "UTF-8", "utf-8", "iso-8859-1"])
                cte = rng.choice(["Q", "q", "Q", "B"]) if charset != "iso-8859-1" else "Q"
                text = "".join(rng.sample(pieces, rng.randint(1, 2)))
                body = q(text) if cte in "Qq" else "QW5h"
                words.append(f"=?{charset}?{cte}?{body}?=")
        address = rng.choice(["ana.ruiz+1@mail.example.org", "A_B@x-y.example.pe"])
        value = " ".join(words) + rng.choice([" <", " <", "<"]) + address + ">"
        if _ENCODED_FROM.fullmatch(value):
            shortcut += 1
        for shown in ("", "Ana", "otro@evil.example"):
            got = raw_from_problem(f"From: {value}\r\n\r\nx".encode(), shown)
            expected = _parser_from_problem(value, shown)
            if expected in ("group", "not one mailbox"):
                assert got is not None and "ambiguo" in got, value
            else:
                assert got == expected, value
    assert shortcut > 500  # the shortcut was taken often enough to be tested
