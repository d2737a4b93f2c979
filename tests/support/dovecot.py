"""A private Dovecot IMAP server for integration tests (Debian dovecot-imapd, Dovecot 2.3).

`dovecot` (session scope) starts one unprivileged instance on a free loopback port with its own
config, base_dir, state_dir and Maildirs; each test takes a fresh account with
`dovecot.new_user()` so tests never see each other's mail. `stop()`/`start()` simulate the
server going away mid-run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

ACCOUNTS = 200  # one fresh account per test; written before the server starts
PASSWORD = secrets.token_hex(6)
MAIL_USER = "dovecot"  # a non-root uid owning the Maildirs (first_valid_uid admits it)

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
instance_name = mailflow-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
mail_max_userip_connections = 200
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
{passdb}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
"""


PASSWD_PASSDB = """\
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/passwd
}}"""

# Dovecot 2.3 oauth2 passdb (doc.dovecot.org, "Open Authentication v2.0 database"): the
# bearer token of SASL XOAUTH2/OAUTHBEARER is checked by POSTing it to an RFC 7662
# introspection endpoint; `username` in the answer must name the user logging in.
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/dovecot-oauth2.conf.ext
}}"""

OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DovecotAccount:
    """One mail account on the test server."""

    host: str
    port: int
    user: str
    password: str

    def url(self, folder: str = "INBOX") -> str:
        return f"imap://{self.user}:{self.password}@{self.host}:{self.port}/{folder}"

    def client(self) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        c.login(self.user, self.password)
        return c

    def append(self, raws: list[bytes], folder: str = "INBOX") -> None:
        c = self.client()
        try:
            for raw in raws:
                c.append(folder, raw)
        finally:
            c.logout()

    def count(self, folder: str) -> int:
        c = self.client()
        try:
            if not c.folder_exists(folder):
                return 0
            return int(c.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])
        finally:
            c.logout()


@dataclass
class Dovecot:
    """A running private Dovecot instance."""

    base: Path
    port: int
    uid: int
    gid: int
    users: list[str] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.base / "dovecot.conf"

    def start(self) -> None:
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True, timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], check=False, timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.02)
            except OSError:
                return

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def new_user(self) -> DovecotAccount:
        """The next unused account (all are written before start: passwd-file reloads lag)."""
        user = self.users.pop()
        return DovecotAccount("127.0.0.1", self.port, user, PASSWORD)


def _start(base: Path, introspection_url: str | None = None) -> Dovecot:
    pw = pwd.getpwnam(MAIL_USER)
    port = free_port()
    os.chmod(base, 0o755)
    (base / "home").mkdir()
    os.chown(base / "home", pw.pw_uid, pw.pw_gid)
    users = [f"u{i}" for i in range(ACCOUNTS)]
    (base / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in users))
    (base / "passwd").chmod(0o644)
    server = Dovecot(base, port, pw.pw_uid, pw.pw_gid, users)
    if introspection_url:
        mechanisms, passdb = "xoauth2 oauthbearer", OAUTH2_PASSDB.format(base=base)
        oauth_conf = base / "dovecot-oauth2.conf.ext"
        oauth_conf.write_text(OAUTH2_CONF.format(introspection_url=introspection_url))
        oauth_conf.chmod(0o644)
    else:
        mechanisms, passdb = "plain login", PASSWD_PASSDB.format(base=base)
    server.conf.write_text(
        CONFIG.format(
            base=base,
            port=port,
            uid=pw.pw_uid,
            gid=pw.pw_gid,
            auth_mechanisms=mechanisms,
            passdb=passdb,
        )
    )
    server.start()
    return server


@contextlib.contextmanager
def running_dovecot(
    prefix: str = "mailflow-dovecot-", introspection_url: str | None = None
) -> Iterator[Dovecot]:
    """A private Dovecot instance for the duration of the block (tests and benchmarks).

    With `introspection_url`, logins are SASL XOAUTH2/OAUTHBEARER only, checked by Dovecot's
    oauth2 passdb against that RFC 7662 endpoint (tests.support.oauth_server); else PLAIN/LOGIN with
    the shared PASSWORD.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    server = _start(base, introspection_url)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def imap_account(dovecot: Dovecot) -> DovecotAccount:
    """A fresh, empty account on the shared test Dovecot."""
    return dovecot.new_user()
