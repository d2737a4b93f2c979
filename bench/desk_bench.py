"""Response times of the staff desk at volume: queue and search with 10,000 and 100,000 cases.

Usage: .venv/bin/python bench/desk_bench.py [--sizes 10000 100000] [--db sqlite postgresql]
       [--repeat 7]
Seeds each database in bulk (tests/support/desk_seed.py: 2,000 queued messages plus the cases, 2 % of
them in review, 4 audit events per case), then times GET requests in-process (Starlette TestClient, full middleware and
templates, no network). Prints a table and writes bench/results/desk.json. PostgreSQL needs
MAILFLOW_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from mailflow.store.db import Database  # noqa: E402
from tests.support.desk_seed import seed_volume  # noqa: E402
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for  # noqa: E402

MESSAGES = 2000
REVIEW_SHARE = 0.02
EVENTS_PER_CASE = 4  # audit rows per case besides the seeded reason: the table is realistic
REQUESTS = {
    "bandeja, primera página": "/bandeja",
    "bandeja, un motivo, página 5": "/bandeja?motivo=Recurso+extempor%C3%A1neo&pagina=5",
    "bandeja, expedientes por vencimiento": "/bandeja?tipo=expediente&orden=vence",
    "expedientes, primera página": "/expedientes",
    "búsqueda «lopez gregorio jose»": "/expedientes?q=lopez+gregorio+jose",
    "búsqueda sin resultados": "/expedientes?q=zzzz+qqqq",
    "búsqueda por documento (8 dígitos)": "/expedientes?q={document}",
    "búsqueda por número completo": "/expedientes?q=EXP-2026-{last}",
    "CSV de un trámite y estado": "/expedientes.csv?tramite=autorizacion_viaje&estado=en_tramite",
}


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[Database]:
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp / 'desk.db'}")
        db.migrate()
        yield db
        db.dispose()
        return
    from tests.support.fixtures_db import fresh_pg_database

    with fresh_pg_database("mailflow_desk_bench") as url:
        db = Database(url)
        yield db
        db.dispose()


def login(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token, "no login form"
    data = {"username": "ana", "password": PASSWORD, "csrf_token": token[1]}
    assert client.post("/login", data=data).status_code == 303


def measure(kind: str, size: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp_name, database(kind, Path(tmp_name)) as db:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        seed_users(db)
        review = int(size * REVIEW_SHARE)
        seed_volume(
            db, messages=MESSAGES, review_cases=review, other_cases=size - review, now=NOW,
            events_per_case=EVENTS_PER_CASE,
        )  # fmt: skip
        if kind == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        seeded = time.perf_counter() - started
        client = TestClient(build(settings_for(tmp), db, [NOW]), follow_redirects=False)  # type: ignore[arg-type]
        login(client)
        with db.session(readonly=True) as session:
            from sqlalchemy import select

            from mailflow.store.models import Case

            document = session.scalar(select(Case.applicant_document).limit(1).offset(size // 2))
        rows: dict[str, object] = {}
        for name, path in REQUESTS.items():
            url = path.format(document=document, last=f"{size:06d}")
            first = client.get(url)
            assert first.status_code == 200, (url, first.status_code)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t0)
            assert response.status_code == 200
            rows[name] = {
                "median_ms": round(statistics.median(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "kib": round(len(response.content) / 1024, 1),
            }
        return {"db": kind, "cases": size, "queued": MESSAGES + review,
                "seed_seconds": round(seeded, 1), "requests": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    results = []
    for kind in args.db:
        for size in args.sizes:
            result = measure(kind, size, args.repeat)
            results.append(result)
            print(f"\n{kind}, {size:,} cases, {result['queued']:,} queued "
                  f"(seeded in {result['seed_seconds']} s)")  # fmt: skip
            for name, row in result["requests"].items():  # type: ignore[attr-defined]
                print(f"  {name:<40} {row['median_ms']:>8} ms  (max {row['max_ms']} ms, "
                      f"{row['kib']} KiB)")  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "desk.json").write_text(
        json.dumps({"machine": platform.platform(), "results": results}, indent=2),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
