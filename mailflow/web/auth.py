"""Login, logout, throttled and server-revocable sessions, and `require_role` for desk routes.

Blocking work (argon2, database) runs in worker threads, never on the event loop; argon2 runs at
most HASH_THREADS at a time so a burst of logins cannot take the memory or every worker thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.store.db import Database
from mailflow.store.models import User
from mailflow.web import WebContext
from mailflow.web.csrf import checked_form, rotate
from mailflow.web.pages import context_of, flash, now, redirect, render
from mailflow.web.throttle import LoginThrottle, Refusal
from mailflow.web.users import (
    UserError,
    find_user,
    hash_password,
    needs_rehash,
    revoke_sessions,
    verify_password,
)

MAX_FAILURES = 20  # consecutive failures (kept in the database) before a short lock
LOCK_MINUTES = 15
HASH_THREADS = 2
ROLE_NAMES = {"staff": "Mesa de partes", "manager": "Jefatura", "admin": "Administración"}
FAILED = (
    "Usuario o contraseña incorrectos, o demasiados intentos seguidos: "
    "revise sus datos o espere unos minutos e intente de nuevo."
)
TOO_MANY = (
    "Demasiados intentos fallidos desde esta conexión: espere unos minutos e intente de nuevo."
)
_UID = "uid"
_VERSION = "sv"
_RESOLVED = "session_user"
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
        """The Spanish name of the user's role (ROLE_NAMES), else the role code."""
        return ROLE_NAMES.get(self.role, self.role)


@dataclass(frozen=True)
class _Account:
    """What a login attempt needs to know about an account, read before argon2 runs."""

    id: int
    password_hash: str


class LoginRequired(HTTPException):
    """No session: the exception handler sends the visitor to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(401, "Inicie sesión para continuar.")
        self.next_url = next_url


def lock_duration(failures: int) -> dt.timedelta | None:
    """The database lock after `failures` consecutive failures: LOCK_MINUTES at every
    MAX_FAILURES-th failure, else None. Short and fixed (no doubling): the in-memory throttle
    does the slowing down, this lock only backs it up across processes and restarts."""
    if failures < MAX_FAILURES or failures % MAX_FAILURES:
        return None
    return dt.timedelta(minutes=LOCK_MINUTES)


def load_session_user(db: Database, uid: object, version: object) -> SessionUser | None:
    """The active account `uid` if its session version still equals `version`, else None.

    Blocking (one read transaction): call it from a worker thread in async code.
    """
    if not isinstance(uid, int) or not isinstance(version, int):
        return None
    with db.session(readonly=True) as session:
        user = session.get(User, uid)
        if user is None or not user.active or user.session_version != version:
            return None
        return SessionUser(
            user.id, user.username, user.full_name, user.role, user.must_change_password
        )


async def resolve_session_user(request: Request) -> SessionUser | None:
    """Check the session cookie against the database in a worker thread; remember the answer
    in request.state for `current_user`. A revoked or stale session is emptied."""
    session = request.session
    if _UID not in session:
        user = None
    else:
        db = context_of(request).db
        user = await run_in_threadpool(load_session_user, db, session[_UID], session.get(_VERSION))
        if user is None:
            session.clear()
    setattr(request.state, _RESOLVED, user)
    return user


def current_user(request: Request) -> SessionUser | None:
    """The active account of this session, checked against the database on every request
    (by the session middleware through `resolve_session_user`; read here if it did not run)."""
    if hasattr(request.state, _RESOLVED):
        resolved: SessionUser | None = getattr(request.state, _RESOLVED)
        return resolved
    if _UID not in request.session:
        return None
    db = context_of(request).db
    return load_session_user(db, request.session[_UID], request.session.get(_VERSION))


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


def keep_session(request: Request, version: int) -> None:
    """Keep this browser's session after the user's own password change ended every session
    of the account (`revoke_sessions`): its cookie takes the account's new version."""
    if _UID in request.session:
        request.session[_VERSION] = version


def home_for(role: str) -> str:
    """Where a role lands after login."""
    return "/bandeja" if role == "staff" else "/expedientes"


class _HashSlots:
    """At most `size` argon2 computations at once (an anyio limiter per event loop, kept in a
    RunVar: limiters belong to the loop that made them, and the test client runs several)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar(f"mailflow_hashing_{id(self)}")

    def limiter(self) -> anyio.CapacityLimiter:
        try:
            return self._limiter.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.size)
            self._limiter.set(limiter)
            return limiter


def _account(db: Database, username: str) -> _Account | None:
    """The account's id and hash (read transaction), or None for an unknown username."""
    with db.session(readonly=True) as session:
        user = find_user(session, username)
        return None if user is None else _Account(user.id, user.password_hash)


def _check_password(account: _Account | None, password: str) -> tuple[bool, str | None]:
    """(whether the password is right, a fresh hash when the stored one is outdated).

    An unknown account spends the same argon2 time and is never right.
    """
    ok = verify_password(account.password_hash if account else None, password)
    if not ok or account is None or not needs_rehash(account.password_hash):
        return ok, None
    try:
        return ok, hash_password(password)
    except UserError:  # an old password shorter than today's minimum: keep its hash
        return ok, None


def _settle(
    db: Database, account: _Account, ok: bool, at: dt.datetime, new_hash: str | None
) -> tuple[int, str, int] | None:
    """Record the attempt in one short write transaction; (id, role, session version) when it
    logs in. A locked or disabled account, or a password changed meanwhile, does not log in."""
    with db.session() as session:
        user = session.get(User, account.id)
        if user is None:
            return None
        locked = user.locked_until is not None and user.locked_until > at
        if ok and user.active and not locked and user.password_hash == account.password_hash:
            user.failed_logins = 0
            user.locked_until = None
            if new_hash is not None:
                user.password_hash = new_hash
            return user.id, user.role, user.session_version
        if not ok and not locked:
            user.failed_logins += 1
            lock = lock_duration(user.failed_logins)
            if lock is not None:
                user.locked_until = at + lock
        return None


def _revoke(db: Database, uid: int) -> None:
    with db.session() as session:
        user = session.get(User, uid)
        if user is not None:
            revoke_sessions(user)


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET/POST /login, POST /logout and / (redirect to the user's home)."""
    web = context.settings.web
    throttle = LoginThrottle(
        web.login_failures_per_address, web.login_failures_per_account, web.login_window_seconds
    )
    hashing = _HashSlots(HASH_THREADS)

    async def home(request: Request) -> Response:
        user = require_role(request)
        return redirect(home_for(user.role))

    async def login_page(request: Request) -> Response:
        if current_user(request) is not None:
            return redirect("/")
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await checked_form(request)
        username = str(form.get("username", "")).strip().lower()[:200]
        password = str(form.get("password", ""))  # size bounded by web.max_body_bytes
        target = _safe_next(str(form.get("next", "")))
        at = now(request)
        address = request.client.host if request.client else ""
        refusal = throttle.refused(address, username, at.timestamp())
        if refusal is Refusal.ADDRESS:
            response = render(request, "login.html", status=429, next=target, error=TOO_MANY)
            response.headers["Retry-After"] = str(int(web.login_window_seconds))
            return response
        result = None
        if refusal is None:
            account = await run_in_threadpool(_account, context.db, username) if username else None
            ok, new_hash = await anyio.to_thread.run_sync(
                _check_password, account, password, limiter=hashing.limiter()
            )
            if account is not None:
                result = await run_in_threadpool(_settle, context.db, account, ok, at, new_hash)
            if result is None:
                throttle.failed(address, username, at.timestamp())
        if result is None:
            return render(request, "login.html", status=401, next=target, error=FAILED)
        throttle.succeeded(username)
        uid, role, version = result
        request.session.clear()
        request.session[_UID] = uid
        request.session[_VERSION] = version
        rotate(request)
        return redirect(target or home_for(role))

    async def logout(request: Request) -> Response:
        await checked_form(request)
        uid = request.session.get(_UID)
        if isinstance(uid, int):
            await run_in_threadpool(_revoke, context.db, uid)
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
