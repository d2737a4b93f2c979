"""Profile `mailflow run --once` end to end: corpus → real Dovecot → engine under cProfile → sink.

Usage: .venv/bin/python bench/profile_run.py [-n 1000] [--corpus sin_pdf|cargo|mixto] [--top 40]
       [--sort cumulative|tottime] [--out bench/results/run.prof]
Prints the wall time, messages/s and the top functions; the .prof file opens with pstats/snakeviz.
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import MIX, build, new_kit  # noqa: E402
from bench.servers import append_all, dovecot, engine_config, smtp_sink  # noqa: E402

CORPORA = {"sin_pdf": {"sin_pdf": 1.0}, "cargo": {"cargo": 1.0}, "mixto": dict(MIX)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--corpus", default="sin_pdf", choices=sorted(CORPORA))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "run.prof"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as keys, dovecot() as server, smtp_sink() as sink:
        kit = new_kit(Path(keys))
        raws = [raw for _, raw in build(kit, args.n, CORPORA[args.corpus])]
        account = server.new_user()
        append_all(account, raws)
        with tempfile.TemporaryDirectory(prefix="mailflow-prof-") as name:
            tmp = Path(name)
            config = engine_config(tmp, account.url(), sink.url, trust_root=kit.ca_pem)
            env = {"MAILFLOW_CONFIG": str(config), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(out),
                    "-m",
                    "mailflow",
                    "run",
                    "--no-web",
                    "--once",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mailflow run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    print(
        f"{args.n} mensajes en {wall:.1f} s (bajo cProfile): {args.n / wall:.1f} msg/s;"
        f" respuestas en el sumidero: {len(sink.messages)}"
    )
    pstats.Stats(str(out)).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
