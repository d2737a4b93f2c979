"""Commands agree on where the data is: the demo's config, and reads that create nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mailflow(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    full.update(env or {})
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "mailflow", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_health_and_users_on_a_missing_database_create_nothing(tmp_path: Path) -> None:
    health = mailflow("health", cwd=tmp_path)
    assert health.returncode == 1 and "Traceback" not in health.stderr
    report = json.loads(health.stdout)
    assert not report["ok"]
    assert report["problems"][0].startswith(f"no existe la base de datos {tmp_path / 'data'}")
    users = mailflow("users", "list", cwd=tmp_path)
    assert users.returncode == 2 and "Traceback" not in users.stderr
    assert "no existe la base de datos" in users.stderr and "mailflow run --once" in users.stderr
    assert list(tmp_path.iterdir()) == []  # no data/, no empty mailflow.store.db


def test_demo_writes_its_config_and_other_commands_use_it(tmp_path: Path) -> None:
    demo = mailflow(
        "demo", "--exit-after-samples", "--smtp-port", "0", "--web-port", "0", cwd=tmp_path
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    exported = re.search(r"export MAILFLOW_CONFIG=(\S+)", demo.stdout)
    assert exported, demo.stdout
    config = Path(exported.group(1))
    assert config == tmp_path / "data" / "demo" / "config.yaml"

    # Without the export, reads look at ./data, find nothing, say where the demo is.
    lost = mailflow("users", "list", cwd=tmp_path)
    assert lost.returncode == 2 and f"export MAILFLOW_CONFIG={config}" in lost.stderr
    assert not (tmp_path / "data" / "mailflow.db").exists()

    env = {"MAILFLOW_CONFIG": str(config)}
    elsewhere = tmp_path / "otra-carpeta"
    elsewhere.mkdir()
    health = mailflow("health", cwd=elsewhere, env=env)
    report = json.loads(health.stdout)
    assert health.returncode == 0, health.stdout
    assert report["migrated"] and report["inbox"]["done"] >= 12 and report["signing"]["loaded"]
    assert report["trust_roots"]["certificates"] == 1
    users = mailflow("users", "list", cwd=elsewhere, env=env)
    assert users.returncode == 0
    assert [line.split()[0] for line in users.stdout.splitlines()] == ["admin", "jefa", "mesa"]
    assert list(elsewhere.iterdir()) == []


def test_unreachable_postgresql_is_reported_without_a_traceback(tmp_path: Path) -> None:
    env = {"MAILFLOW_DATABASE_URL": "postgresql://mailflow:secreta@127.0.0.1:1/mailflow"}
    health = mailflow("health", cwd=tmp_path, env=env)
    assert health.returncode == 1 and "Traceback" not in health.stderr
    assert json.loads(health.stdout)["problems"][0].startswith("no se puede leer la base de datos")
    users = mailflow("users", "list", cwd=tmp_path, env=env)
    assert users.returncode == 2 and "Traceback" not in users.stderr
    assert "postgresql+psycopg://mailflow:***@127.0.0.1:1/mailflow" in users.stderr
    assert "secreta" not in users.stderr + health.stdout
