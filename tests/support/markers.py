"""The `integration` marker: tests that need real servers or run mailflow end to end.

Real servers: Dovecot, PostgreSQL, an SMTP server, Chromium. End to end: mailflow (or Python) in
another process (`python -m mailflow`, `mailflow run`, the built wheel), or the whole corpus
through the pipeline. `pytest -m "not integration"` is then the quick, server-free run.

A test is marked at collection when it uses a server fixture (SERVER_FIXTURES, also through other
fixtures), is parametrised on "postgresql" (`any_db`), is listed in END_TO_END, or when its code,
the code of the project's fixtures it uses, or of the project's helpers those call (followed
through tests.*), matches SERVER_CALLS. `pytest -m integration --collect-only -q` lists them.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any

import pytest

SERVER_FIXTURES = frozenset(
    ["dovecot", "imap_account", "oauth_server", "pg_db", "pg_url", "smtp_sink"]
)
SERVER_CALLS = re.compile(
    r"\brunning_dovecot\(|\brunning_oauth_server\(|\bfresh_pg_database\(|\bsync_playwright\b|\bSmtpSink\(|\bserving\(|\bstart_service\(|\bsys\.executable\b"
)
END_TO_END = ("tests/runners/test_corpus_answers.py",)


def _ours(obj: Any) -> bool:
    return isinstance(obj, types.FunctionType) and obj.__module__.startswith("tests")


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _starts_server(func: types.FunctionType, seen: set[Any]) -> bool:
    """Whether `func`, or a project helper it names (transitively), matches SERVER_CALLS."""
    if func in seen:
        return False
    seen.add(func)
    try:
        if SERVER_CALLS.search(inspect.getsource(func)):
            return True
    except (OSError, TypeError):
        return False
    for name in _names(func.__code__):
        helper = func.__globals__.get(name)
        if _ours(helper) and _starts_server(helper, seen):
            return True
    return False


def needs_server(item: pytest.Item) -> bool:
    """Whether a collected test reaches a real server or runs end to end (module docstring)."""
    if item.nodeid.startswith(END_TO_END):
        return True
    if set(getattr(item, "fixturenames", ())) & SERVER_FIXTURES:
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        return True  # `any_db` and tests parametrised over the database kind
    seen: set[Any] = set()
    function = getattr(item, "function", None)
    if _ours(function) and _starts_server(function, seen):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        if any(_ours(d.func) and _starts_server(d.func, seen) for d in defs):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the `integration` marker to each collected test that needs it."""
    for item in items:
        if needs_server(item):
            item.add_marker(pytest.mark.integration)
