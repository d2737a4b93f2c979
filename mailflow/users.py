"""Staff accounts of the web desk: argon2 password hashing and add / passwd / list."""

from __future__ import annotations

import re
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.errors import MailflowError
from mailflow.models import ROLES, User

MIN_PASSWORD_LENGTH = 10
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
_HASHER = PasswordHasher()  # stateless and thread-safe: parameters only, no mutable state
_DUMMY_HASH = _HASHER.hash("contraseña de relleno para tiempo constante")


class UserError(MailflowError):
    """A user command that cannot be done (unknown user, weak password, bad role...)."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (raises UserError if it is too short)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"la contraseña debe tener al menos {MIN_PASSWORD_LENGTH} caracteres")
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
        password_hash=hash_password(password),
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
    user.password_hash = hash_password(password)
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
