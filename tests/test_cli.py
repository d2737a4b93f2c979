"""The command line: `check` JSON contract and table, `calendar due`, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "samples").glob("*.eml"))
KEYS = {"file", "tramite", "disposition", "fields", "missing", "signature", "reasons"}


def mailflow(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mailflow", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_json_one_object_per_line() -> None:
    result = mailflow("check", "--json", *map(str, SAMPLES))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(SAMPLES) >= 10
    for row in rows:
        assert set(row) >= KEYS
        assert row["disposition"] in {"accept", "observe", "review", "ignore", "inform"}
        assert row["signature"]["status"] in {"valid", "untrusted", "invalid", "unsigned", "absent"}
        assert isinstance(row["missing"], list) and isinstance(row["fields"], dict)
        assert row["reasons"], row
    by_file = {Path(r["file"]).name: r for r in rows}
    first = by_file["01_actualizacion_datos.eml"]
    assert (first["tramite"], first["disposition"]) == ("actualizacion_datos", "accept")
    assert by_file["11_respuesta_automatica.eml"]["disposition"] == "ignore"
    assert by_file["09_carne_solicitante.eml"]["disposition"] == "inform"


def test_check_has_no_side_effects(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    env = {"MAILFLOW_DATA_DIR": str(tmp_path / "data")}
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    for key in ("rules", "state_machines", "templates"):
        text = text.replace(f"{key}_dir: {key}", f"{key}_dir: {ROOT / key}")
    config.write_text(text, encoding="utf-8")
    result = mailflow("--config", str(config), "check", str(SAMPLES[0]), env=env)
    assert result.returncode == 0, result.stderr
    assert "decisión : accept" in result.stdout
    assert "Total: accept 1" in result.stdout
    assert not (tmp_path / "data").exists()


def test_check_bad_input_gets_a_review_row(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(os.urandom(4096))
    missing = tmp_path / "missing.eml"
    result = mailflow("check", "--json", str(garbage), str(missing))
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["disposition"] for r in rows] == ["review", "review"]
    assert "No se pudo leer" in rows[1]["reasons"][0]
    assert "missing.eml" in result.stderr and "No se pudo leer" in result.stderr


def test_check_unreadable_file_exits_non_zero(tmp_path: Path) -> None:
    folder = tmp_path / "carpeta.eml"
    folder.mkdir()
    result = mailflow("check", str(folder))
    assert result.returncode == 1
    assert "carpeta.eml" in result.stderr


def test_check_trust_root_must_exist(tmp_path: Path) -> None:
    result = mailflow("check", "--trust-root", str(tmp_path / "nope.pem"), str(SAMPLES[0]))
    assert result.returncode == 2
    assert "nope.pem" in result.stderr


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        ("2026-11-23T10:00", "15", "2026-12-16"),
        # Friday 17:30 counts that Friday (no cutoff): day 1 is Monday 30
        ("2026-11-27T17:30-05:00", "1", "2026-11-30"),
        ("2026-11-27T18:30-05:00", "15", "2026-12-22"),  # issue 12's first example
        ("2026-12-01T17:30-05:00", "5", "2026-12-10"),  # issue 12's second example
        ("2026-12-30T09:00", "3", "2027-01-05"),
    ],
)
def test_calendar_due(received: str, days: str, due: str) -> None:
    result = mailflow("calendar", "due", "--received", received, "--days", days)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == due


def test_calendar_due_explain_names_the_rule_and_its_source() -> None:
    result = mailflow(
        "calendar", "due", "--received", "2026-11-27T18:30-05:00", "--days", "15", "--explain"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-12-22"
    assert "sin hora de corte" in result.stderr
    assert "Ley N° 31465" in result.stderr and "0518-2024/SEL-INDECOPI" in result.stderr
    assert "TUO de la Ley N° 27444" in result.stderr
    assert "Se tiene por recibido el 2026-11-27 (viernes)." in result.stderr
    assert "Vence el 2026-12-22 (martes)." in result.stderr


def test_calendar_due_unknown_office_is_a_usage_error() -> None:
    result = mailflow(
        "calendar", "due", "--received", "2026-11-23", "--days", "1", "--office", "marte"
    )
    assert result.returncode == 2
    assert "oficina desconocida 'marte'" in result.stderr


def test_calendar_check_reports_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "calendar.yaml").write_text(
        "offices:\n  lima: {name: Lima, region: Lima}\n"
        "dias_no_laborables:\n  - date: 2026-12-24\n    name: Nochebuena\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"rules_dir: {rules}\n", encoding="utf-8")
    result = mailflow("--config", str(config), "calendar", "check")
    assert result.returncode != 0
    assert f"{rules / 'calendar.yaml'}:4: falta source" in result.stderr
    good = mailflow("calendar", "check")
    assert good.returncode == 0, good.stderr
    assert "calendar.yaml: 1 oficina(s)" in good.stdout


def test_calendar_due_extra_non_working_day_from_env() -> None:
    env = {"MAILFLOW_EXTRA_NON_WORKING_DAYS": "2026-12-15"}
    result = mailflow("calendar", "due", "--received", "2026-11-23T10:00", "--days", "15", env=env)
    assert result.stdout.strip() == "2026-12-17"


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("sla:\n  due_soon_dayz: 3\n", encoding="utf-8")
    result = mailflow(
        "--config", str(bad), "calendar", "due", "--received", "2026-11-23", "--days", "1"
    )
    assert result.returncode == 2
    assert "sla.due_soon_dayz: clave desconocida" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_date_is_a_usage_error() -> None:
    result = mailflow("calendar", "due", "--received", "ayer", "--days", "1")
    assert result.returncode == 2
    assert "fecha ISO inválida" in result.stderr
