"""Compare what the sandboxed reader produces for a fixed corpus, between two versions of the code.

Usage (run with PYTHONPATH set to the checkout whose code is compared; this script does not
put its own checkout on the path):
  PYTHONPATH=A python bench/reading_fingerprint.py corpus DIR [-n 300]
      builds the sin_pdf and default-mix bench corpora once (PKI under DIR/keys) into
      DIR/corpus.pickle, so that every version reads the same bytes and trusts the same CA;
  PYTHONPATH=A python bench/reading_fingerprint.py dump DIR OUT.json
      reads every message of DIR/corpus.pickle (plus /work/shared/field_cases/*.eml when
      present) as the reader child does (`Reader`'s work on ("read", (raw, DecideAs))) and
      writes the repr of each reply (parsed message without raw, Decision, Findings) to OUT;
      `--hostile` adds tests.support.hostile's malformed and malicious mail;
  python bench/reading_fingerprint.py diff OLD.json NEW.json
      prints the messages whose replies differ; exit status 1 when any does.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import sys
import tempfile
from pathlib import Path

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
FIELD_CASES = Path("/work/shared/field_cases")


def make_corpus(directory: Path, n: int) -> None:
    """Write DIR/corpus.pickle: {"ca": CA PEM path, "messages": [(name, raw), …]}."""
    from bench.corpus import MIX, build, new_kit

    kit = new_kit(directory / "keys")
    messages = [(f"sin_pdf-{i}", raw) for i, (_, raw) in enumerate(build(kit, n, {"sin_pdf": 1.0}))]
    messages += [(f"mix-{i}-{k}", raw) for i, (k, raw) in enumerate(build(kit, n, MIX, seed=11))]
    (directory / "corpus.pickle").write_bytes(
        pickle.dumps({"ca": str(kit.ca_pem), "messages": messages})
    )


def dump(directory: Path, out: Path) -> None:
    """Write OUT: {name: repr of the reader's reply} for the saved corpus and the field cases."""
    from mailflow.app import App
    from mailflow.config import load_settings
    from mailflow.runners.reading import DecideAs

    saved = pickle.loads((directory / "corpus.pickle").read_bytes())
    messages = list(saved["messages"])
    messages += [(p.name, p.read_bytes()) for p in sorted(FIELD_CASES.glob("*.eml"))]
    if "--hostile" in sys.argv:  # malformed and malicious mail (tests.support.hostile), ~1 min
        from tests.support.hostile import hostile_corpus

        messages += [(f"hostile-{h.name}", h.raw) for h in hostile_corpus()]
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="mailflow-fp-") as tmp:
        settings = load_settings(root / "config.yaml", env={})
        roots = (Path(saved["ca"]),)
        if (FIELD_CASES / "trust-ca.pem").exists():
            roots += (FIELD_CASES / "trust-ca.pem",)
        signatures = settings.signatures.model_copy(update={"trust_roots": roots})
        settings = settings.model_copy(
            update={
                "data_dir": Path(tmp) / "data",
                "database_url": f"sqlite:///{tmp}/fp.db",
                "signatures": signatures,
            }
        )
        work = App(settings).reader.pool.work
        found = {}
        for name, raw in messages:
            reply = work(("read", (raw, DecideAs(received=NOW))))
            found[name] = repr(pickle.loads(pickle.dumps(reply)))
    out.write_text(json.dumps(found, indent=0, ensure_ascii=False))


def diff(old: Path, new: Path) -> int:
    """Print the names whose replies differ (first difference of each); 1 when any does."""
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    bad = 0
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x != y:
            bad += 1
            at = next(
                (i for i, (p, q) in enumerate(zip(x or "", y or "", strict=False)) if p != q), 0
            )
            print(
                f"{name}: …{(x or '')[max(0, at - 80) : at + 120]!r}\n   vs …{(y or '')[max(0, at - 80) : at + 120]!r}"
            )
    print(f"{len(a)} vs {len(b)} messages, {bad} differ")
    return 1 if bad else 0


def main() -> int:
    command, *args = sys.argv[1:]
    if command == "corpus":
        n = int(args[2]) if len(args) > 2 and args[1] == "-n" else 300
        make_corpus(Path(args[0]), n)
        return 0
    if command == "dump":
        dump(Path(args[0]), Path(args[1]))  # (--hostile is read from sys.argv)
        return 0
    return diff(Path(args[0]), Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
