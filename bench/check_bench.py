"""Throughput of `check_bytes` on one core: N realistic requests without PDFs, then with a signed PDF.

Usage: .venv/bin/python bench/check_bench.py [-n 2000] [--signed 200]
Prints a table and writes bench/results/check.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.app import App  # noqa: E402
from mailflow.config import load_settings  # noqa: E402
from mailflow.ops.checking import check_bytes  # noqa: E402
from tests.corpus.cases import REQS  # noqa: E402
from tests.corpus.compose import Kit, Req, make_kit, render  # noqa: E402


def messages(kit: Kit, count: int, *, signed: bool) -> list[bytes]:
    """`count` messages cycling through the corpus requests (mixed procedures and layouts)."""
    pool: list[Req] = [r for r in REQS if (r.pdf == "valid") == signed and r.data_in == "body"]
    if not signed:
        pool = [r for r in pool if r.pdf is None and r.denuncia is None]
    out = []
    for i in range(count):
        req = pool[i % len(pool)]
        out.append(render(replace(req, name=f"{req.name}-{i}"), kit))
    return out


def measure(app: App, batch: list[bytes]) -> dict[str, float]:
    check_bytes(app, batch[0])  # warm caches (classifier, vocabulary, pypdf imports)
    latencies = []
    start = time.perf_counter()
    for raw in batch:
        t0 = time.perf_counter()
        check_bytes(app, raw)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    latencies.sort()
    return {
        "messages": len(batch),
        "seconds": round(total, 3),
        "messages_per_second": round(len(batch) / total, 1),
        "mean_kib": round(sum(map(len, batch)) / len(batch) / 1024, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="messages without PDF (default 2000)")
    parser.add_argument("--signed", type=int, default=200, help="messages with a signed PDF")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kit = make_kit(Path(tmp))
        settings = load_settings(ROOT / "config.yaml", env={})
        sigs = settings.signatures.model_copy(update={"trust_roots": (kit.ca_pem,)})
        app = App(settings.model_copy(update={"signatures": sigs}))
        app.validate()
        results = {
            "sin_pdf": measure(app, messages(kit, args.n, signed=False)),
            "pdf_firmado": measure(app, messages(kit, args.signed, signed=True)),
        }
    print(f"{'caso':<12} {'mensajes':>9} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'KiB':>6}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['messages']:>9.0f} {r['messages_per_second']:>9.1f} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['mean_kib']:>6.1f}"
        )
    out = ROOT / "bench" / "results" / "check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cores_used": 1}
    out.write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"→ {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
