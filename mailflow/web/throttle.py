"""Login throttling: sliding windows of failed attempts per client address and per account."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

MAX_KEYS = 50_000  # bounded memory: a flood of distinct usernames cannot grow the tables forever


class Refusal(Enum):
    """Why an attempt is refused before its password is checked."""

    ADDRESS = "address"  # too many failures from this client address
    ACCOUNT = "account"  # too many failures for this username (from anywhere)


@dataclass
class SlidingWindow:
    """Timestamps (seconds) of recent events per key; `full` once `limit` fall in `window_s`."""

    limit: int
    window_s: float
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str, at: float) -> int:
        """Events of `key` in the window ending at `at` (older ones are forgotten)."""
        with self._lock:
            events = self._events.get(key)
            if events is None:
                return 0
            while events and events[0] <= at - self.window_s:
                events.popleft()
            if not events:
                del self._events[key]
                return 0
            return len(events)

    def full(self, key: str, at: float) -> bool:
        """True when `key` has `limit` or more events in the window ending at `at` (seconds)."""
        return self.count(key, at) >= self.limit

    def add(self, key: str, at: float) -> None:
        """Record one event of `key` at `at` (seconds)."""
        with self._lock:
            if key not in self._events and len(self._events) >= MAX_KEYS:
                self._forget_expired(at)
                if len(self._events) >= MAX_KEYS:  # still full: drop the oldest key
                    self._events.pop(next(iter(self._events)))
            events = self._events.setdefault(key, deque())
            events.append(at)
            while len(events) > self.limit:
                events.popleft()

    def clear(self, key: str) -> None:
        """Forget every event of `key` (e.g. after a successful login)."""
        with self._lock:
            self._events.pop(key, None)

    def _forget_expired(self, at: float) -> None:
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= at - self.window_s]
        for key in stale:
            del self._events[key]


class LoginThrottle:
    """Failed logins counted per client address and per submitted username (in memory).

    An address with `per_address` failures in `window_s` seconds is refused for any account; a
    username with `per_account` failures (from any address) is refused until its oldest failure
    leaves the window, so a guesser slows one account down for minutes, never locks it for hours.
    The username key is the submitted text, whether or not such an account exists, so refusals
    say nothing about which accounts exist. Per process: each web worker counts its own.
    """

    def __init__(self, per_address: int, per_account: int, window_s: float) -> None:
        self.addresses = SlidingWindow(per_address, window_s)
        self.accounts = SlidingWindow(per_account, window_s)

    def refused(self, address: str, username: str, at: float) -> Refusal | None:
        """Why an attempt at `at` (seconds) must be refused unchecked, or None to check it."""
        if self.addresses.full(address, at):
            return Refusal.ADDRESS
        if username and self.accounts.full(username, at):
            return Refusal.ACCOUNT
        return None

    def failed(self, address: str, username: str, at: float) -> None:
        """Count a wrong password (or unknown user) for the address and the username."""
        self.addresses.add(address, at)
        if username:
            self.accounts.add(username, at)

    def succeeded(self, username: str) -> None:
        """A right password ends the account's streak (the address keeps its count)."""
        self.accounts.clear(username)
