"""Memory stays flat draining a large mailbox; a 25 MB attachment costs a bounded multiple."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.corpus.build import Mail, Part
from tests.support.dovecot import Dovecot, DovecotAccount
from tests.support.mail_requests import request
from tests.support.mailservice import REPO, write_config

MIB = 1 << 20
# In a child process: resident memory after warming up (imports, one message processed), then
# the high-water mark of the real work (VmHWM, reset first: ru_maxrss would include the parent's
# memory, which exec carries over); printed as JSON.
CHILD = """
import json, re, sys
from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.imap import drain_once, imap_targets
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import process_waiting, utc_now
from tests.support.mail_requests import request

def status(key):
    text = open("/proc/self/status").read()
    return int(re.search(key + r":\\s+(\\d+) kB", text).group(1)) * 1024

app = App(load_settings(sys.argv[1], env={}))
app.database.migrate()
with app.database.session() as s:
    store_raw(s, request(99999), mailbox="warm", source="smtp", now=utc_now())
process_waiting(app, utc_now, "warm")
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark
before = status("VmRSS")
stored = sum(drain_once(t, app.database, utc_now) for t in imap_targets(app.settings))
ingested = status("VmHWM")
processed = process_waiting(app, utc_now, "w")[0] if sys.argv[2] == "process" else 0
print(json.dumps({"before": before, "ingested": ingested, "after": status("VmHWM"),
                  "stored": stored, "processed": processed}))
"""


def _child(tmp: Path, account: DovecotAccount, mode: str, timeout: float = 120) -> dict[str, int]:
    tmp.mkdir(exist_ok=True)
    config = write_config(tmp, account.url(), None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(config), mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return result


def _padded(i: int) -> bytes:
    """A request with ~20 KB of quoted history, so that holding them all would show."""
    raw = request(i)
    head, _, body = raw.partition(b"\n\n")
    return head + b"\n\n" + body + (b"> " + b"historial " * 8 + b"\n") * 240


def _append(account: DovecotAccount, raws: list[bytes]) -> None:
    client = account.client()
    try:
        for i in range(0, len(raws), 100):
            client.multiappend("INBOX", raws[i : i + 100])
    finally:
        client.logout()


def test_draining_a_large_mailbox_keeps_memory_flat(
    tmp_path: Path, imap_account: DovecotAccount, dovecot: Dovecot
) -> None:
    small_account = dovecot.new_user()
    _append(small_account, [_padded(i) for i in range(300)])
    raws = [_padded(i) for i in range(3000)]
    assert sum(map(len, raws)) > 55 * MIB
    _append(imap_account, raws)
    small = _child(tmp_path / "small", small_account, "ingest")
    large = _child(tmp_path / "large", imap_account, "ingest")
    assert (small["stored"], large["stored"]) == (300, 3000)
    growth = (large["after"] - large["before"]) - (small["after"] - small["before"])
    assert growth < 20 * MIB, (small, large)  # ten times the mail, not ten times the memory


def test_a_25_mb_attachment_costs_a_bounded_multiple(
    tmp_path: Path, imap_account: DovecotAccount
) -> None:
    size = 25 * MIB
    raw = Mail(
        subject="Duplicado de carné de extranjería",
        sender="Kevin Rojas <kevin.rojas.v@outlook.com>",
        date="Mon, 23 Nov 2026 10:00:00 -0500",
        text="Adjunto la denuncia policial escaneada.\nNombre completo: Kevin Rojas\n",
        attachments=(Part("denuncia.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + os.urandom(size)),),
        message_id="grande@example.org",
    ).render()
    imap_account.append([raw])
    del raw
    result = _child(tmp_path, imap_account, "process")
    assert (result["stored"], result["processed"]) == (1, 1), result
    # IMAP fetch + durable store: the response, one copy, the database write (measured 4.2×).
    assert result["ingested"] - result["before"] < 5 * size, result
    # Then parsing: the raw text as str, flanker's tree and the part bodies are copies of the
    # 34 MB encoded message (measured 11.6× the attachment in all; the target is 4×).
    assert result["after"] - result["before"] < 14 * size, result
