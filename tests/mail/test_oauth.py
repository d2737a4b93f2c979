"""XOAUTH2 mailbox logins against real servers: Dovecot's oauth2 passdb and an aiosmtpd server.

Both servers check the bearer token with the local authorization server's RFC 7662
introspection endpoint (tests.support.oauth_server); mailflow gets its tokens from that server's
token endpoint by the client-credentials or refresh-token grant (authlib).
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailflow.app import App
from mailflow.config import OAuth2Settings, Settings, load_settings
from mailflow.errors import ConfigError
from mailflow.mail.oauth import REFRESH_MARGIN_SECONDS, TokenSource
from mailflow.ops.startup import MailboxUrls
from mailflow.runners.imap import drain_once, imap_targets
from mailflow.runners.service import run_once, utc_now
from mailflow.runners.transport import SmtpTransport, parse_smtp_url
from mailflow.store.db import Database
from mailflow.store.models import OutboxMessage
from tests.support.dovecot import Dovecot, free_port, running_dovecot
from tests.support.mail_requests import request
from tests.support.mailservice import write_config
from tests.support.oauth_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    OAuthServer,
    running_oauth_server,
    validate_bearer,
)
from tests.support.smtp_sink import SmtpSink

SECRET_ENV = {"MAILFLOW_OAUTH2_CLIENT_SECRET": CLIENT_SECRET}


@pytest.fixture(scope="module")
def authz() -> Iterator[OAuthServer]:
    with running_oauth_server(OAuthServer()) as state:
        yield state


@pytest.fixture(scope="module")
def oauth_dovecot(authz: OAuthServer) -> Iterator[Dovecot]:
    with running_dovecot("mailflow-dovecot-oauth2-", authz.introspection_url) as server:
        yield server


@dataclass
class XOAuth2Sink(SmtpSink):
    """An SMTP sink that only accepts mail after AUTH XOAUTH2 with an introspected token."""

    introspection_url: str = ""
    logins: list[str] = field(default_factory=list)
    rejected_logins: int = 0

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) == 2:
            raw = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False)
            raw = answer
        fields = dict(part.split("=", 1) for part in raw.decode().split("\x01") if "=" in part)
        user, bearer = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(None, validate_bearer, self.introspection_url, bearer)
        if info.get("active") is not True or info.get("username") != user:
            with self.lock:
                self.rejected_logins += 1
            return AuthResult(success=False, handled=False)
        with self.lock:
            self.logins.append(user)
        return AuthResult(success=True, auth_data=user)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def xoauth2_sink(authz: OAuthServer) -> Iterator[XOAuth2Sink]:
    sink = XOAuth2Sink(port=free_port(), introspection_url=authz.introspection_url)
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN", "LOGIN"],
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def _oauth2(authz: OAuthServer) -> OAuth2Settings:
    return OAuth2Settings(token_url=authz.token_url, client_id=CLIENT_ID, scope="mail")


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_cached_and_renewed_before_expiry(authz: OAuthServer) -> None:
    authz.lifetime = 600.0
    clock = _Clock()
    tokens = TokenSource(_oauth2(authz), SECRET_ENV, clock=clock)
    first = tokens.token()
    assert tokens.token() == first and tokens.fetches == 1 and tokens.grant == "client_credentials"
    clock.now += 600.0 - REFRESH_MARGIN_SECONDS - 1  # still comfortably valid: reused
    assert tokens.token() == first and tokens.fetches == 1
    clock.now += 2  # inside the renewal margin: a new token before the old one expires
    second = tokens.token()
    assert second != first and tokens.fetches == 2
    assert authz.grants[-2:] == ["client_credentials", "client_credentials"]


def test_refresh_token_grant_when_a_refresh_token_is_given(authz: OAuthServer) -> None:
    env = {"MAILFLOW_OAUTH2_REFRESH_TOKEN": REFRESH_TOKEN}
    tokens = TokenSource(_oauth2(authz), env)
    assert tokens.grant == "refresh_token"
    tokens.token()
    assert authz.grants[-1] == "refresh_token"


def test_missing_secret_is_named() -> None:
    settings = OAuth2Settings(token_url="http://127.0.0.1:1/token", client_id="x")
    with pytest.raises(ConfigError, match="MAILFLOW_OAUTH2_CLIENT_SECRET"):
        TokenSource(settings, {})


def test_dovecot_oauth2_passdb_accepts_only_a_live_token(
    authz: OAuthServer, oauth_dovecot: Dovecot
) -> None:
    account = oauth_dovecot.new_user()
    authz.username = account.user
    token = TokenSource(_oauth2(authz), SECRET_ENV).token()
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=30)
    client.oauth2_login(account.user, token)
    client.logout()
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=30)
    with pytest.raises(LoginError):
        client.oauth2_login(account.user, "not-a-token")
    with pytest.raises(LoginError):  # password logins are off on this server
        IMAPClient(account.host, port=account.port, ssl=False, timeout=30).login(
            account.user, account.password
        )


def test_run_once_reads_and_replies_through_xoauth2(
    tmp_path: Path,
    authz: OAuthServer,
    oauth_dovecot: Dovecot,
    xoauth2_sink: XOAuth2Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = oauth_dovecot.new_user()
    authz.username = account.user
    authz.lifetime = 3600.0
    appender = IMAPClient(account.host, port=account.port, ssl=False, timeout=30)
    appender.oauth2_login(account.user, TokenSource(_oauth2(authz), SECRET_ENV).token())
    raws = [request(i) for i in range(3)]
    for raw in raws:
        appender.append("INBOX", raw)
    appender.logout()
    config = write_config(
        tmp_path,
        f"imap://{account.user}@{account.host}:{account.port}/INBOX",
        f"smtp://{account.user}@127.0.0.1:{xoauth2_sink.port}",
        imap={"auth": "xoauth2"},
        smtp={"auth": "xoauth2"},
        oauth2={"token_url": authz.token_url, "client_id": CLIENT_ID},
    )
    monkeypatch.setenv("MAILFLOW_OAUTH2_CLIENT_SECRET", CLIENT_SECRET)
    settings = load_settings(config, env={})
    app = App(settings)
    assert MailboxUrls().check(app, {}) == []  # no password needed in the URL with xoauth2
    app.database.migrate()
    stats = run_once(app)
    assert stats.errors == [] and stats.ingested == 3 and stats.sent == 3
    assert len(xoauth2_sink.snapshot()) == 3
    assert xoauth2_sink.logins == [account.user]  # one SMTP session for the batch
    assert app.mail_tokens is not None and app.mail_tokens.fetches == 1  # IMAP + SMTP share it
    app.database.dispose()


def test_smtp_rejected_token_is_renewed_on_the_next_try(
    tmp_path: Path, authz: OAuthServer, xoauth2_sink: XOAuth2Sink
) -> None:

    authz.username = "mesadepartes@cepr.example"
    authz.lifetime = 3600.0
    tokens = TokenSource(_oauth2(authz), SECRET_ENV)
    target = parse_smtp_url(f"smtp://mesadepartes%40cepr.example@127.0.0.1:{xoauth2_sink.port}")
    transport = SmtpTransport(replace(target, tokens=tokens))
    row = OutboxMessage(
        id=1,
        from_addr="mesadepartes@cepr.example",
        to_addr="a@example.org",
        raw=b"Subject: x\n\nx\n",
    )
    tokens.token()
    authz.revoke_all()  # the provider revoked the cached token early
    with pytest.raises(smtplib.SMTPAuthenticationError):
        transport.send(row)
    transport.close()
    assert xoauth2_sink.rejected_logins == 1
    assert transport.send(row) == "250 aceptado"  # a fresh token was fetched
    transport.close()
    assert tokens.fetches == 2 and len(xoauth2_sink.snapshot()) == 1


def test_startup_refuses_xoauth2_without_the_secret(
    tmp_path: Path, authz: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILFLOW_OAUTH2_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("MAILFLOW_OAUTH2_REFRESH_TOKEN", raising=False)
    config = write_config(
        tmp_path,
        "imaps://buzon@imap.example.org/INBOX",
        None,
        imap={"auth": "xoauth2"},
        oauth2={"token_url": authz.token_url, "client_id": CLIENT_ID},
    )
    app = App(load_settings(config, env={}))
    findings = [f for f in MailboxUrls().check(app, {}) if f.severity == "error"]
    assert len(findings) == 1 and "MAILFLOW_OAUTH2_CLIENT_SECRET" in findings[0].message


def test_startup_refuses_a_secret_the_token_endpoint_rejects(
    tmp_path: Path, authz: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILFLOW_OAUTH2_CLIENT_SECRET", "equivocado")
    monkeypatch.delenv("MAILFLOW_OAUTH2_REFRESH_TOKEN", raising=False)
    config = write_config(
        tmp_path,
        None,
        "smtp+starttls://buzon@smtp.example.org:587",
        smtp={"auth": "xoauth2"},
        oauth2={"token_url": authz.token_url, "client_id": CLIENT_ID},
    )
    app = App(load_settings(config, env={}))
    findings = [f for f in MailboxUrls().check(app, {}) if f.severity == "error"]
    assert len(findings) == 1
    message = findings[0].message
    assert f"oauth2: {authz.token_url} no entregó un token" in message
    assert "invalid_grant" in message or "invalid" in message
    assert "MAILFLOW_OAUTH2_CLIENT_SECRET" in message


def test_imap_rejected_token_is_renewed_on_the_next_connection(
    tmp_path: Path, authz: OAuthServer, oauth_dovecot: Dovecot, sqlite_db: Database
) -> None:
    account = oauth_dovecot.new_user()
    authz.username = account.user
    authz.lifetime = 3600.0
    tokens = TokenSource(_oauth2(authz), SECRET_ENV)
    settings = Settings.model_validate(
        {
            "imap": {
                "url": f"imap://{account.user}@127.0.0.1:{account.port}/INBOX",
                "auth": "xoauth2",
            }
        }
    )
    (target,) = imap_targets(settings, tokens)
    appender = IMAPClient(account.host, port=account.port, ssl=False, timeout=30)
    appender.oauth2_login(account.user, tokens.token())
    appender.append("INBOX", request(1))
    appender.logout()
    authz.revoke_all()  # the provider revoked the cached token early
    with pytest.raises(LoginError):
        drain_once(target, sqlite_db, utc_now)
    assert drain_once(target, sqlite_db, utc_now) == 1  # a fresh token was fetched
    assert tokens.fetches == 2


def test_xoauth2_mailboxes_configured_by_environment_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    env = {
        "MAILFLOW_IMAP_URL": "imaps://mesa%40cepr.example@outlook.office365.com/INBOX",
        "MAILFLOW_IMAP_AUTH": "xoauth2",
        "MAILFLOW_SMTP_AUTH": "xoauth2",
        "MAILFLOW_OAUTH2_TOKEN_URL": "https://login.example.org/token",
        "MAILFLOW_OAUTH2_CLIENT_ID": "cliente",
        "MAILFLOW_OAUTH2_SCOPE": "https://outlook.office365.com/.default",
    }
    settings = load_settings(env=env)
    assert (settings.imap.auth, settings.smtp.auth) == ("xoauth2", "xoauth2")
    assert settings.oauth2.token_url == "https://login.example.org/token"
    assert settings.oauth2.client_id == "cliente"
    assert settings.oauth2.scope == "https://outlook.office365.com/.default"
    with pytest.raises(ConfigError, match=r"imap\.auth"):
        load_settings(env={**env, "MAILFLOW_IMAP_AUTH": "basic"})
