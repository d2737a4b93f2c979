"""OAuth2 access tokens for mailboxes (SASL XOAUTH2 for IMAP and SMTP), cached until near expiry.

Microsoft 365 and Google Workspace switch basic authentication off for IMAP/SMTP; a service
then logs in with an OAuth2 bearer token (XOAUTH2, as described by Google's and Microsoft's
IMAP/SMTP OAuth documentation). Tokens come from the standard client-credentials grant
(RFC 6749 §4.4) or, when a refresh token is given, the refresh-token grant (RFC 6749 §6),
through authlib. Secrets (client secret, refresh token) are read from the environment only.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mailflow.config import OAuth2Settings, Settings
from mailflow.errors import ConfigError

REFRESH_MARGIN_SECONDS = 120.0  # renew this long before the token expires
DEFAULT_LIFETIME_SECONDS = 3600.0  # when the server does not say (expires_in missing)


class TokenError(Exception):
    """The token endpoint refused or could not be reached (the login is retried later)."""


class TokenSource:
    """One OAuth2 client's access token, fetched on first use and renewed before it expires.

    Thread-safe: the IMAP pollers and the sender share one instance. `clock` returns seconds
    (time.time by default) and exists for tests.
    """

    def __init__(
        self,
        settings: OAuth2Settings,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        if not settings.token_url or not settings.client_id:
            raise ConfigError(
                "oauth2: faltan token_url y client_id (necesarios con imap.auth o smtp.auth "
                "xoauth2)"
            )
        self.settings = settings
        self._secret = env.get(settings.client_secret_env) or None
        self._refresh = env.get(settings.refresh_token_env) or None
        if self._secret is None and self._refresh is None:
            raise ConfigError(
                f"oauth2: falta el secreto del cliente en la variable {settings.client_secret_env} "
                f"(o un token de actualización en {settings.refresh_token_env})"
            )
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0
        self.fetches = 0  # how many times the endpoint was asked (observability, tests)

    @property
    def grant(self) -> str:
        """ "refresh_token" when a refresh token is configured, else "client_credentials"."""
        return "refresh_token" if self._refresh else "client_credentials"

    def token(self) -> str:
        """A valid access token (cached; renewed REFRESH_MARGIN_SECONDS before expiry).

        Raises TokenError when the endpoint refuses or cannot be reached.
        """
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at - REFRESH_MARGIN_SECONDS:
                self._fetch()
            assert self._access is not None
            return self._access

    def invalidate(self) -> None:
        """Forget the cached token (the server rejected it): the next call fetches a new one."""
        with self._lock:
            self._access = None

    def _fetch(self) -> None:
        from authlib.common.errors import AuthlibBaseError
        from authlib.integrations.requests_client import OAuth2Session
        from requests import RequestException

        s = self.settings
        session = OAuth2Session(s.client_id, self._secret, scope=s.scope or None)
        session.timeout = self._timeout
        now = self._clock()
        try:
            if self._refresh:
                tok: Any = session.refresh_token(s.token_url, refresh_token=self._refresh)
            else:
                tok = session.fetch_token(s.token_url, grant_type="client_credentials")
        except (AuthlibBaseError, RequestException, ValueError) as exc:
            raise TokenError(f"oauth2: {s.token_url} no entregó un token: {exc}") from exc
        finally:
            session.close()
        access = tok.get("access_token")
        if not access:
            raise TokenError(f"oauth2: {s.token_url} respondió sin access_token")
        self.fetches += 1
        self._access = str(access)
        lifetime = float(tok.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
        self._expires_at = now + lifetime
        if tok.get("refresh_token"):
            self._refresh = str(tok["refresh_token"])  # rotated refresh tokens replace the old one


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial client response (unencoded): user, bearer token, ^A separators."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_base64(user: str, token: str) -> str:
    """The XOAUTH2 initial response base64-encoded, as sent after `AUTH XOAUTH2`."""
    return base64.b64encode(xoauth2_string(user, token).encode()).decode("ascii")


def token_source(settings: Settings, env: Mapping[str, str]) -> TokenSource | None:
    """A TokenSource when imap.auth or smtp.auth is `xoauth2`, else None (password logins)."""
    if "xoauth2" not in (settings.imap.auth, settings.smtp.auth):
        return None
    return TokenSource(settings.oauth2, env, timeout=settings.smtp.timeout_seconds)
