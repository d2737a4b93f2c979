"""A local OAuth2 authorization server for tests: token endpoint and RFC 7662 introspection.

`/token` issues bearer tokens by the client-credentials grant (client id and secret by HTTP
Basic or form fields) or the refresh-token grant; `/introspect` answers `{"active": …,
"username": …}` as Dovecot's oauth2 passdb (introspection_mode = post) and the aiosmtpd
XOAUTH2 authenticator expect. Tokens live `lifetime` seconds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CLIENT_ID = "mailflow-test"
CLIENT_SECRET = secrets.token_hex(8)
REFRESH_TOKEN = secrets.token_hex(8)


@dataclass
class OAuthServer:
    """State of the local authorization server; `username` is the mailbox tokens are for."""

    username: str = ""
    lifetime: float = 3600.0
    port: int = 0
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)  # token -> expiry, user
    grants: list[str] = field(default_factory=list)  # grant_type of every token issued
    introspections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def issue(self, grant: str) -> dict[str, object]:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (time.time() + self.lifetime, self.username)
            self.grants.append(grant)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def introspect(self, token: str) -> dict[str, object]:
        with self.lock:
            self.introspections += 1
            entry = self.tokens.get(token)
        if entry is None or entry[0] < time.time():
            return {"active": False}
        return {"active": True, "username": entry[1], "token_type": "Bearer"}

    def revoke_all(self) -> None:
        with self.lock:
            self.tokens.clear()


def validate_bearer(introspection_url: str, token: str) -> dict[str, object]:
    """POST the token to the introspection endpoint (RFC 7662) and return the JSON answer."""
    body = urllib.parse.urlencode({"token": token}).encode()
    with urllib.request.urlopen(introspection_url, data=body, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def _handler(state: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

        def _reply(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}

        def _client(self, form: dict[str, str]) -> tuple[str, str]:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                return urllib.parse.unquote(user), urllib.parse.unquote(password)
            return form.get("client_id", ""), form.get("client_secret", "")

        def do_POST(self) -> None:
            form = self._form()
            path = urllib.parse.urlsplit(self.path).path
            if path == "/introspect":
                self._reply(200, state.introspect(form.get("token", "")))
                return
            if path != "/token":
                self._reply(404, {"error": "not_found"})
                return
            grant = form.get("grant_type", "")
            client_id, secret = self._client(form)
            if (
                grant == "client_credentials" and (client_id, secret) == (CLIENT_ID, CLIENT_SECRET)
            ) or (grant == "refresh_token" and form.get("refresh_token") == REFRESH_TOKEN):
                self._reply(200, state.issue(grant))
            else:
                self._reply(400, {"error": "invalid_grant"})

    return Handler


@contextlib.contextmanager
def running_oauth_server(state: OAuthServer) -> Iterator[OAuthServer]:
    """Serve `state` on a free loopback port (set on `state.port`) for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="oauth-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    with running_oauth_server(OAuthServer()) as state:
        yield state
