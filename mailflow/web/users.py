"""Staff accounts of the web desk: argon2 password hashing and add / passwd / list."""

from __future__ import annotations

import re
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.errors import MailflowError
from mailflow.store.models import ROLES, User
from mailflow.web.passwords import MIN_LENGTH, weakness

MIN_PASSWORD_LENGTH = MIN_LENGTH
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
_HASHER = PasswordHasher()  # stateless and thread-safe: parameters only, no mutable state
_DUMMY_HASH = _HASHER.hash("contraseña de relleno para tiempo constante")


class UserError(MailflowError):
    """A user command that cannot be done (unknown user, weak password, bad role...)."""


def hash_password(password: str, *, new_for: str | None = None) -> str:
    """An argon2id hash of `password`; raises UserError when it is too short.

    `new_for` (the username) marks a new password: the whole policy applies then
    (mailflow.web.passwords: length, common passwords, sequences, the username). Without it only
    the length is checked (re-hashing a password already in use, at login).
    """
    if new_for is None:
        problem = None if len(password) >= MIN_PASSWORD_LENGTH else weakness(password)
    else:
        problem = weakness(password, new_for)
    if problem is not None:
        raise UserError(problem)
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, spends the same time and returns False."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with older parameters than the current ones."""
    return _HASHER.check_needs_rehash(password_hash)


def find_user(session: Session, username: str) -> User | None:
    """The account called `username` (case-insensitive), or None."""
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def add_user(session: Session, username: str, full_name: str, role: str, password: str) -> User:
    """Create an active account; raise UserError on a bad name, role, password or duplicate."""
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise UserError(
            f"nombre de usuario no válido: {username!r} (use minúsculas, números, '.', '_' o '-')"
        )
    if role not in ROLES:
        raise UserError(f"rol desconocido: {role!r} (use uno de: {', '.join(ROLES)})")
    if not full_name.strip():
        raise UserError("falta el nombre completo del usuario")
    if find_user(session, name) is not None:
        raise UserError(f"el usuario {name!r} ya existe")
    user = User(
        username=name,
        full_name=full_name.strip(),
        role=role,
        password_hash=hash_password(password, new_for=name),
        active=True,
        failed_logins=0,
        session_version=0,
    )
    session.add(user)
    session.flush()
    return user


def revoke_sessions(user: User) -> None:
    """End every web session of `user`: the desk refuses cookies of an older session version."""
    user.session_version = (user.session_version or 0) + 1


def set_password(session: Session, username: str, password: str) -> User:
    """Replace the password, lift any lockout and end the user's open web sessions; raise
    UserError if the user is unknown or the password too short."""
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no existe el usuario {username!r}")
    user.password_hash = hash_password(password, new_for=user.username)
    user.failed_logins = 0
    user.locked_until = None
    revoke_sessions(user)
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Enable or disable an account (a disabled account cannot log in and its web sessions
    end for good: enabling it again does not revive them)."""
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no existe el usuario {username!r}")
    if user.active and not active:
        revoke_sessions(user)
    user.active = active
    return user


def list_users(session: Session) -> Sequence[User]:
    """Every account, ordered by username."""
    return session.scalars(select(User).order_by(User.username)).all()


def reset_password(session: Session, username: str, temporary: str) -> User:
    """An administrator's reset: a temporary password (policy applies) the user must replace at
    the next login; also lifts any lockout. Raises UserError."""
    user = set_password(session, username, temporary)
    user.must_change_password = True
    return user


def change_own_password(session: Session, username: str, current: str, new: str) -> User:
    """The user replaces their password (policy applies; must differ from the current one)."""
    user = find_user(session, username)
    if user is None or not verify_password(user.password_hash, current):
        raise UserError("la contraseña actual no es correcta")
    if new == current:
        raise UserError("la nueva contraseña debe ser distinta de la actual")
    set_password(session, username, new)
    user.must_change_password = False
    return user


def set_role(session: Session, username: str, role: str) -> User:
    """Change an account's role (staff | manager | admin). Raises UserError."""
    if role not in ROLES:
        raise UserError(f"rol desconocido: {role!r} (use uno de: {', '.join(ROLES)})")
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no existe el usuario {username!r}")
    user.role = role
    return user


def unlock(session: Session, username: str) -> User:
    """Lift a lockout after failed logins. Raises UserError for an unknown user."""
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no existe el usuario {username!r}")
    user.failed_logins = 0
    user.locked_until = None
    return user
