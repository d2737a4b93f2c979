"""Users admin (reset password → change at next login, role, unlock), password policy,
registry browsing by role, and the vulnerability vocabulary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.cases.priority import (
    Vocabulary,
    assess,
    find_words,
    load_vocabulary,
    parse_vocabulary,
)
from mailflow.errors import DefinitionError
from mailflow.store.db import Database
from mailflow.store.models import Applicant, User
from mailflow.web.auth import MAX_FAILURES, lock_duration
from mailflow.web.passwords import weakness
from tests.support.web_seed import NOW, ROOT, build, seed_users, settings_for
from tests.web.test_web_auth import login, token

NEW = "Cielo-Azul-de-Lima-7"


@pytest.fixture
def client(sqlite_db: Database, tmp_path: Path) -> TestClient:
    seed_users(sqlite_db)
    web = build(settings_for(tmp_path), sqlite_db, [NOW])
    return TestClient(web, follow_redirects=False)  # type: ignore[arg-type]


def _user(db: Database, username: str) -> User:
    with db.session(readonly=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        session.expunge(user)
        return user


@pytest.mark.parametrize("password", ["1234567890", "password123", "qwertyuiop", "aaaaaaaaaaa"])
def test_policy_refuses_common_and_guessable_passwords(password: str) -> None:
    assert weakness(password) is not None


def test_policy_accepts_a_long_uncommon_password_and_refuses_short_or_the_username() -> None:
    assert weakness(NEW) is None
    assert "al menos 10" in (weakness("Corta-1") or "")
    assert "nombre de usuario" in (weakness("rosa.salas.mre", "rosa.salas.mre") or "")


def test_admin_resets_password_and_user_must_set_a_new_one(
    client: TestClient, sqlite_db: Database
) -> None:
    assert login(client, "admin") == 303
    csrf = token(client, "/usuarios")
    weak = client.post("/usuarios/ana/clave", data={"password": "1234567890", "csrf_token": csrf})
    assert weak.status_code == 303
    assert "demasiado común" in client.get("/usuarios").text
    client.post("/usuarios/ana/clave", data={"password": "Temporal-Lima-2026", "csrf_token": csrf})
    assert _user(sqlite_db, "ana").must_change_password
    client.post("/logout", data={"csrf_token": csrf})

    assert login(client, "ana", "Temporal-Lima-2026") == 303
    forced = client.get("/bandeja")
    assert forced.status_code == 303 and forced.headers["location"] == "/cuenta/clave"
    csrf = token(client, "/cuenta/clave")
    form = {"current": "Temporal-Lima-2026", "new": NEW, "again": NEW, "csrf_token": csrf}
    assert client.post("/cuenta/clave", data=form).headers["location"] == "/bandeja"
    assert client.get("/bandeja").status_code == 200
    assert not _user(sqlite_db, "ana").must_change_password
    client.post("/logout", data={"csrf_token": csrf})
    assert login(client, "ana", NEW) == 303


def test_admin_changes_role_and_unlocks(client: TestClient, sqlite_db: Database) -> None:
    for _ in range(5):
        assert login(client, "ana", "mala-clave-000") == 401
    # issue 14b: the in-memory throttle slows these down; the database lock comes only after
    # MAX_FAILURES consecutive failures, so the account reaches it here as after many windows
    with sqlite_db.session() as session:
        user = session.scalar(select(User).where(User.username == "ana"))
        assert user is not None and user.failed_logins == 5
        user.failed_logins = MAX_FAILURES
        user.locked_until = NOW + (lock_duration(MAX_FAILURES) or dt.timedelta())
    assert login(client, "ana") == 401  # locked: even the right password is refused
    assert _user(sqlite_db, "ana").locked_until is not None
    assert login(client, "admin") == 303
    csrf = token(client, "/usuarios")
    client.post("/usuarios/ana/desbloquear", data={"csrf_token": csrf})
    client.post("/usuarios/ana/rol", data={"role": "manager", "csrf_token": csrf})
    ana = _user(sqlite_db, "ana")
    assert ana.locked_until is None and ana.failed_logins == 0 and ana.role == "manager"
    client.post("/usuarios/admin/rol", data={"role": "staff", "csrf_token": csrf})
    assert _user(sqlite_db, "admin").role == "admin"  # not on oneself


def test_registry_search_for_staff_hides_vulnerability_manager_sees_it(
    client: TestClient, sqlite_db: Database
) -> None:
    with sqlite_db.session() as session:
        session.add(
            Applicant(
                full_name="Luisa Fernanda Mora", document_number="V12345678",
                email="luisa@example.org", data={"vulnerabilidad": "gestante", "distrito": "Lince"},
            )
        )  # fmt: skip
    assert login(client, "ana") == 303
    found = client.get("/registro/personas?q=mora")
    assert found.status_code == 200 and "Luisa Fernanda Mora" in found.text
    assert "Ninguna persona" in client.get("/registro/personas?q=zzz").text
    with sqlite_db.session(readonly=True) as session:
        pid = session.scalar(select(Applicant.id))
    person = client.get(f"/registro/personas/{pid}").text
    assert "Lince" in person and "gestante" not in person and "reservados" in person
    assert client.get("/registro").status_code == 403  # importing is for managers
    client.post("/logout", data={"csrf_token": token(client, "/bandeja")})
    assert login(client, "jefa") == 303
    assert "gestante" in client.get(f"/registro/personas/{pid}").text


def test_vocabulary_errors_say_file_and_line() -> None:
    bad = "ver_detalle: [manager]\ncategorias:\n  salud:\n    nombre: Salud\n    peso: -1\n"
    with pytest.raises(DefinitionError, match=r"^v.yaml:5: peso debe ser"):
        parse_vocabulary(bad, Path("v.yaml"))
    with pytest.raises(DefinitionError, match=r"^v.yaml:1: ver_detalle"):
        parse_vocabulary("ver_detalle: [jefe]\n", Path("v.yaml"))


def test_words_are_found_whole_and_reasons_hide_details_from_other_roles() -> None:
    vocabulary = load_vocabulary(ROOT / "rules" / "vulnerabilidad.yaml")
    found = find_words(vocabulary, "Viajo con MI HIJO MENOR; estoy embarazada.")
    assert found == {"menor_de_edad": "mi hijo menor", "embarazo": "embarazada"}
    assert find_words(vocabulary, "La violenta tormenta") == {}  # no partial words
    assert isinstance(vocabulary, Vocabulary) and not vocabulary.may_see_details("staff")
    case = object()
    signal = type("S", (), {"status": "sugerida", "category": "embarazo", "source": "correo"})()
    hidden = assess(vocabulary, case, [signal], 2, detailed=False)  # type: ignore[arg-type,list-item]
    shown = assess(vocabulary, case, [signal], 2, detailed=True)  # type: ignore[arg-type,list-item]
    assert hidden.level == shown.level == "alta" and hidden.score == 3 + 2
    assert hidden.reasons == ("Datos de vulnerabilidad reservados (por confirmar)",
                              "El plazo vence en 2 día(s) hábil(es)")  # fmt: skip
    assert shown.reasons[0] == "Gestante (por confirmar; según el correo)"
