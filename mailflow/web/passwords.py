"""Password policy for desk accounts: a minimum length and no common or guessable passwords.

The common-password list is zxcvbn's frequency list (30,000 most used passwords from public
leaks, maintained with the zxcvbn project) plus a few Spanish ones shipped here.
"""

from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 10
SPANISH_COMMON = frozenset(
    {
        "contrasena", "contraseña", "contrasena123", "contraseña123", "123456789a",
        "peru123456", "lima123456", "miclave123", "clave12345", "administrador",
        "bienvenido", "bienvenido1", "cancilleria", "refugiados", "mesadepartes",
    }
)  # fmt: skip


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The lower-cased common passwords (zxcvbn's list plus the Spanish ones above)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"]) | SPANISH_COMMON


def weakness(password: str, username: str | None = None) -> str | None:
    """Why `password` is refused (Spanish), or None when it meets the policy."""
    if len(password) < MIN_LENGTH:
        return f"la contraseña debe tener al menos {MIN_LENGTH} caracteres"
    lowered = password.lower()
    if lowered in common_passwords():
        return "esa contraseña es demasiado común: elija otra"
    if len(set(lowered)) <= 2:
        return "la contraseña no puede repetir uno o dos caracteres"
    if lowered in _sequences():
        return "la contraseña no puede ser una secuencia de teclas o números"
    if username and lowered == username.lower():
        return "la contraseña no puede ser el nombre de usuario"
    return None


@lru_cache(maxsize=1)
def _sequences() -> frozenset[str]:
    rows = (
        "01234567890",
        "09876543210",
        "abcdefghijklmnopqrstuvwxyz",
        "qwertyuiopasdfghjklzxcvbnm",
    )
    out = set()
    for row in rows:
        for n in range(MIN_LENGTH, len(row) + 1):
            out |= {row[i : i + n] for i in range(len(row) - n + 1)}
    return frozenset(out)
