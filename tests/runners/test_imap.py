"""IMAP ingestion against a real Dovecot: store before move, UIDs, UIDVALIDITY, IDLE, restarts."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from mailflow.config import Settings
from mailflow.runners.imap import ImapPoller, ImapTarget, drain_once, imap_targets
from mailflow.store.db import Database
from mailflow.store.models import InboxMessage
from tests.support.dovecot import Dovecot, DovecotAccount
from tests.support.mail_requests import request
from tests.support.waiting import GENEROUS_SECONDS

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _target(
    account: DovecotAccount, after_store: str = "move", folder: str = "INBOX"
) -> ImapTarget:
    imap = {"url": account.url(folder), "batch_size": 3, "after_store": after_store}
    return imap_targets(Settings.model_validate({"imap": imap}))[0]


def _rows(db: Database) -> list[InboxMessage]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(InboxMessage).order_by(InboxMessage.id)))


def test_drain_stores_in_batches_then_moves(
    imap_account: DovecotAccount, sqlite_db: Database
) -> None:
    imap_account.append([request(i) for i in range(7)])
    assert drain_once(_target(imap_account), sqlite_db, lambda: NOW) == 7
    rows = _rows(sqlite_db)
    assert [r.uid for r in rows] == list(range(1, 8)) and {r.mailbox for r in rows} == {"INBOX"}
    assert imap_account.count("INBOX") == 0 and imap_account.count("Procesados") == 7
    assert drain_once(_target(imap_account), sqlite_db, lambda: NOW) == 0


def test_crash_between_store_and_move_only_moves(
    imap_account: DovecotAccount, sqlite_db: Database
) -> None:
    imap_account.append([request(i) for i in range(2)])
    poller = ImapPoller(_target(imap_account, after_store="copy_expunge"), sqlite_db, lambda: NOW)
    client = poller.connect()
    poller._store_batch(client, [1, 2])  # stored and committed; "crash" before moving
    poller.close()
    assert (
        drain_once(_target(imap_account, after_store="copy_expunge"), sqlite_db, lambda: NOW) == 0
    )
    assert len(_rows(sqlite_db)) == 2 and imap_account.count("Procesados") == 2


def test_uidvalidity_change_resyncs_without_duplicates(
    imap_account: DovecotAccount, sqlite_db: Database
) -> None:
    raws = [request(i) for i in range(3)]
    c = imap_account.client()
    c.create_folder("Entrada")
    c.logout()
    imap_account.append(raws, folder="Entrada")
    flag = _target(imap_account, after_store="flag", folder="Entrada")
    assert drain_once(flag, sqlite_db, lambda: NOW) == 3
    assert drain_once(flag, sqlite_db, lambda: NOW) == 0  # flagged $Mailflow: not again
    c = imap_account.client()
    c.delete_folder("Entrada")
    c.create_folder("Entrada")  # a recreated folder has a new UIDVALIDITY; UIDs restart at 1
    c.logout()
    imap_account.append([*raws, request(99)], folder="Entrada")
    assert drain_once(flag, sqlite_db, lambda: NOW) == 1
    rows = _rows(sqlite_db)
    assert [r.status for r in rows] == ["new"] * 3 + ["duplicate"] * 3 + ["new"]
    assert len({r.uidvalidity for r in rows}) == 2


def test_idle_wakes_up_and_survives_a_server_restart(
    dovecot: Dovecot, imap_account: DovecotAccount, sqlite_db: Database
) -> None:
    stored = threading.Semaphore(0)
    poller = ImapPoller(_target(imap_account), sqlite_db, lambda: NOW, lambda _id: stored.release())
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    try:
        imap_account.append([request(1)])
        assert stored.acquire(timeout=GENEROUS_SECONDS)
        dovecot.stop()
        dovecot.start()
        imap_account.append([request(2)])
        assert stored.acquire(timeout=GENEROUS_SECONDS)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert len(_rows(sqlite_db)) == 2 and imap_account.count("Procesados") == 2


def test_two_workers_starting_together_both_connect(
    imap_account: DovecotAccount, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saw no processed folder and both created it: the second's [ALREADYEXISTS] is no
    failure (two `run` processes started at once on one mailbox)."""
    ImapPoller(_target(imap_account), sqlite_db, lambda: NOW).connect().logout()  # the first
    answers = [False]  # the second looked before the first created it
    real = IMAPClient.folder_exists

    def exists(self: IMAPClient, name: str) -> bool:
        return answers.pop() if answers else bool(real(self, name))

    monkeypatch.setattr(IMAPClient, "folder_exists", exists)
    poller = ImapPoller(_target(imap_account), sqlite_db, lambda: NOW)
    poller.connect()
    poller.close()
    imap_account.append([request(1)])
    assert drain_once(_target(imap_account), sqlite_db, lambda: NOW) == 1
