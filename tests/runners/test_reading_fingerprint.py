"""What the reader child makes of a fixed corpus, against fingerprints taken before its reading
was made cheaper (issue 18): the same parse, Findings and decision for every message.

The corpus: the bench's plain requests (deterministic), its default mix with signed PDFs (the
PDFs' bytes carry the time they were signed: attachments count by name and type only), and
the static fixture mail. Run as a script to write the fingerprints again with the code on
PYTHONPATH (only when a change of a decision is intended):
  PYTHONPATH=<checkout> python tests/runners/test_reading_fingerprint.py --write
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FINGERPRINTS = ROOT / "tests" / "fixtures" / "reading_fingerprints.json"
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
COUNT = 200  # messages of each bench mix


def _digest(reply: Any) -> str:
    """A short digest of one reply (parsed message, Decision, Findings), the attachments'
    bytes left out."""
    msg, decision, found = reply
    files = tuple((a.filename, a.content_type) for a in msg.attachments)
    msg = dataclasses.replace(msg, attachments=())
    text = repr((msg, files, decision, found))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def fingerprints(tmp: Path) -> dict[str, str]:
    """{message name: digest of the reader's reply} over the corpus, PKI made under `tmp`."""
    from bench.corpus import MIX, build, new_kit
    from mailflow.app import App
    from mailflow.config import load_settings
    from mailflow.runners.reading import DecideAs

    kit = new_kit(tmp / "keys")
    messages = [(f"sin_pdf-{i}", r) for i, (_, r) in enumerate(build(kit, COUNT, {"sin_pdf": 1}))]
    messages += [(f"mix-{i}-{k}", r) for i, (k, r) in enumerate(build(kit, COUNT, MIX, seed=11))]
    fixtures = ROOT / "tests" / "fixtures"
    for path in sorted([*fixtures.glob("mail/*.eml"), *fixtures.glob("field_cases/*.eml")]):
        messages.append((f"{path.parent.name}/{path.name}", path.read_bytes()))
    settings = load_settings(ROOT / "config.yaml", env={})
    roots = (kit.ca_pem, fixtures / "field_cases" / "trust-ca.pem")
    settings = settings.model_copy(
        update={
            "data_dir": tmp / "data",
            "database_url": f"sqlite:///{tmp / 'fp.db'}",
            "signatures": settings.signatures.model_copy(update={"trust_roots": roots}),
        }
    )
    work = App(settings).reader.pool.work
    out = {}
    for name, raw in messages:
        reply = pickle.loads(pickle.dumps(work(("read", (raw, DecideAs(received=NOW))))))
        out[name] = _digest(reply)
    return out


def test_the_reader_reads_the_corpus_as_before(tmp_path: Path) -> None:
    expected = json.loads(FINGERPRINTS.read_text("utf-8"))
    found = fingerprints(tmp_path)
    assert set(found) == set(expected)
    differ = sorted(name for name in expected if found[name] != expected[name])
    assert not differ, f"{len(differ)} messages read differently: {differ[:10]}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory(prefix="mailflow-fp-") as name:
        FINGERPRINTS.write_text(json.dumps(fingerprints(Path(name)), indent=0, sort_keys=True))
