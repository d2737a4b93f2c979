"""Time the reading of one message as the sandboxed reader child does it, in process.

Usage: PYTHONPATH=$PWD .venv/bin/python bench/reading_bench.py [-n 300] [--mix sin_pdf|default]
           [--repeat R] [--profile N]
(PYTHONPATH picks the checkout whose code is timed; without it, this script's own.)

Builds the bench corpus (`bench.corpus`: all plain requests without PDFs, or the default
`MIX` with signed PDFs and automatic mail), then times in CPU seconds (`time.process_time`)
what one child task costs: the pickle round trip of the task ("read", (raw, DecideAs)) as
`read_inbox_message` sends it for a new message, the child's `work(task)` (parse, Findings,
intake decision; `Reader`'s function itself) and the pickle round trip of its reply
(True, value). The first pass warms the caches a long-lived child keeps (not timed), then
`--repeat` passes are timed; prints ms/message per pass and the median. `--sandbox` then
sends the corpus through the real sandboxed child (`read_message`: pipes, CPU timer) and
prints the parent's and the child's CPU ms/message. `--profile N` prints the N most expensive
functions (cumulative) of one more in-process pass.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pickle
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):  # PYTHONPATH=<checkout>: time that checkout's code
    sys.path.insert(0, str(ROOT))

from bench.corpus import MIX, build, new_kit  # noqa: E402
from mailflow.app import App  # noqa: E402
from mailflow.config import load_settings  # noqa: E402
from mailflow.runners.reading import DecideAs  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def reading_app(tmp: Path, ca_pem: Path) -> App:
    """An App on config.yaml with its data under `tmp` and `ca_pem` as the trust root."""
    import mailflow  # the checkout timed: its own config.yaml and rules

    settings = load_settings(
        Path(mailflow.__file__).resolve().parent.parent / "config.yaml", env={}
    )
    signatures = settings.signatures.model_copy(update={"trust_roots": (ca_pem,)})
    settings = settings.model_copy(
        update={
            "data_dir": tmp / "data",
            "database_url": f"sqlite:///{tmp / 'r.db'}",
            "signatures": signatures,
        }
    )
    return App(settings)


def corpus(tmp: Path, n: int, mix: str) -> tuple[App, list[bytes]]:
    """An App (see `reading_app`) and `n` raw bench-corpus messages of `mix` ("sin_pdf" or
    "default")."""
    kit = new_kit(tmp / "keys")
    shares = {"sin_pdf": 1.0} if mix == "sin_pdf" else dict(MIX)
    raws = [raw for _, raw in build(kit, n, shares)]
    return reading_app(tmp, kit.ca_pem), raws


def child_task(work: Callable[[Any], Any], raw: bytes) -> Any:
    """One sandbox round trip of the "read" task for `raw`, in process: the task pickled and
    unpickled, `work(task)`, its reply pickled and unpickled. Returns the reply's value."""
    task = pickle.loads(pickle.dumps(("read", (raw, DecideAs(received=NOW)))))
    reply = pickle.loads(pickle.dumps((True, work(task))))
    return reply[1]


def one_pass(work: Callable[[Any], Any], raws: list[bytes]) -> float:
    """CPU milliseconds per message of one pass over `raws`."""
    cpu = time.process_time()
    for raw in raws:
        child_task(work, raw)
    return 1000 * (time.process_time() - cpu) / len(raws)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sandbox_pass(app: App, raws: list[bytes]) -> tuple[float, float]:
    """CPU milliseconds per message, (this process, the reader child), of one pass over `raws`
    through the real sandbox (`read_message`): pipes, pickles, CPU timer and all. The child's
    CPU is read from /proc (clock ticks: use a few hundred messages)."""
    from mailflow.runners.reading import read_message

    with app.reader.pool.borrow() as box:
        if box.pid is None:
            box.run(("read", (raws[0], None)))  # fork the child
        assert box.pid is not None
        pid = box.pid
    child = _proc_cpu(pid)
    cpu = time.process_time()
    for raw in raws:
        read_message(app, raw, DecideAs(received=NOW))
    parent = time.process_time() - cpu
    return 1000 * parent / len(raws), 1000 * (_proc_cpu(pid) - child) / len(raws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--mix", choices=("sin_pdf", "default"), default="sin_pdf")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument(
        "--sandbox", action="store_true", help="also time passes through the real reader child"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailflow-reading-") as name:
        app, raws = corpus(Path(name), args.n, args.mix)
        work = app.reader.pool.work
        sizes = [
            len(pickle.dumps((True, work(("read", (raw, DecideAs(received=NOW))))))) for raw in raws
        ]
        times = [one_pass(work, raws) for _ in range(args.repeat)]
        print(
            f"{len(raws)} messages ({args.mix}): CPU ms/msg "
            + " ".join(f"{t:.3f}" for t in times)
            + f"; median {statistics.median(times):.3f}; reply {sum(sizes) / len(sizes):.0f} bytes/msg"
        )
        if args.sandbox:
            for _ in range(args.repeat):
                parent, child = sandbox_pass(app, raws)
                print(f"  sandbox: parent {parent:.3f} + child {child:.3f} CPU ms/msg")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for raw in raws:
                child_task(work, raw)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
