"""Login, logout, lockout with backoff, and `require_role` for every desk route."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.models import User
from mailflow.users import find_user, hash_password, needs_rehash, verify_password
from mailflow.web import WebContext
from mailflow.web.csrf import checked_form, rotate
from mailflow.web.pages import context_of, flash, now, redirect, render

MAX_FAILURES = 5
LOCK_MINUTES = 15
MAX_LOCK = dt.timedelta(hours=24)
ROLE_NAMES = {"staff": "Mesa de partes", "manager": "Jefatura", "admin": "Administración"}
_UID = "uid"
PASSWORD_CHANGE_URL = "/cuenta/clave"  # where an account with a reset password must go first
_MUST_CHANGE = "cambio-de-clave"  # LoginRequired marker (never a path: those start with "/")


@dataclass(frozen=True)
class SessionUser:
    """The logged-in account as the pages see it."""

    id: int
    username: str
    full_name: str
    role: str
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        """The audit actor of this user's actions."""
        return f"usuario:{self.username}"

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)


class LoginRequired(HTTPException):
    """No session: the exception handler sends the visitor to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(401, "Inicie sesión para continuar.")
        self.next_url = next_url


def lock_duration(failures: int) -> dt.timedelta | None:
    """Lock after every MAX_FAILURES failures: 15 min, then 30, 60 ... (at most 24 h)."""
    if failures < MAX_FAILURES or failures % MAX_FAILURES:
        return None
    doubling = failures // MAX_FAILURES - 1
    return min(dt.timedelta(minutes=LOCK_MINUTES) * (2 ** min(doubling, 10)), MAX_LOCK)


def current_user(request: Request) -> SessionUser | None:
    """The active account of this session (re-read from the database on every request)."""
    uid = request.session.get(_UID)
    if not isinstance(uid, int):
        return None
    with context_of(request).db.session(readonly=True) as session:
        user = session.get(User, uid)
        if user is None or not user.active:
            return None
        return SessionUser(
            user.id, user.username, user.full_name, user.role, user.must_change_password
        )


def require_role(request: Request, *roles: str) -> SessionUser:
    """The session's user if its role is one of `roles` (any role when none given).

    Anonymous → LoginRequired (redirect to /login); wrong role → HTTP 403.
    """
    user = current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.user = user
    if user.must_change_password and request.url.path != PASSWORD_CHANGE_URL:
        raise LoginRequired(_MUST_CHANGE)
    if roles and user.role not in roles:
        raise HTTPException(403, "Su cuenta no tiene permiso para ver esta página.")
    return user


def home_for(role: str) -> str:
    """Where a role lands after login."""
    return "/bandeja" if role == "staff" else "/expedientes"


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET/POST /login, POST /logout and / (redirect to the user's home)."""

    async def home(request: Request) -> Response:
        user = require_role(request)
        return redirect(home_for(user.role))

    async def login_page(request: Request) -> Response:
        if current_user(request) is not None:
            return redirect("/")
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await checked_form(request)
        username = str(form.get("username", "")).strip().lower()
        password = str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        at = now(request)
        error = "Usuario o contraseña incorrectos."
        with context.db.session() as session:
            user = find_user(session, username) if username else None
            ok = verify_password(user.password_hash if user else None, password)
            if user is not None and user.locked_until is not None and user.locked_until > at:
                local = user.locked_until.astimezone(_zone(context)).strftime("%H:%M")
                error = f"Demasiados intentos fallidos: la cuenta está bloqueada hasta las {local}."
                ok = False
            elif user is not None and ok and user.active:
                user.failed_logins = 0
                user.locked_until = None
                if needs_rehash(user.password_hash):
                    user.password_hash = hash_password(password)
                uid, role = user.id, user.role
            elif user is not None and not ok:
                user.failed_logins += 1
                lock = lock_duration(user.failed_logins)
                if lock is not None:
                    user.locked_until = at + lock
            else:
                ok = False
        if not ok:
            response = render(request, "login.html", status=401, next=target, error=error)
            return response
        request.session.clear()
        request.session[_UID] = uid
        rotate(request)
        return redirect(target or home_for(role))

    async def logout(request: Request) -> Response:
        await checked_form(request)
        request.session.clear()
        rotate(request)
        flash(request, "Sesión cerrada.", "info")
        return redirect("/login")

    return [
        Route("/", home, methods=["GET"], name="home"),
        Route("/login", login_page, methods=["GET"], name="login"),
        Route("/login", login, methods=["POST"], name="login_post"),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]


def login_redirect(next_url: str) -> Response:
    """The response to LoginRequired (a logged-in user who must change the password: that page)."""
    if next_url == _MUST_CHANGE:
        return redirect(PASSWORD_CHANGE_URL)
    return redirect(f"/login?next={quote(next_url, safe='/')}")


def _safe_next(value: str | None) -> str:
    """Only local paths are followed after login (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return ""


def _zone(context: WebContext) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(context.settings.calendar.timezone)
