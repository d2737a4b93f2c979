"""The shipped policy as a default, `mailflow init` copies, `policy check` reports file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config import load_settings
from mailflow.errors import ConfigError
from mailflow.ops.policy_check import check_policy, policy_settings
from mailflow.policy_files import POLICY_DIRS, default_policy_dir, init_directory


def test_no_config_file_uses_the_shipped_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.rules_dir == default_policy_dir("rules")
    assert (settings.rules_dir / "fields.yaml").is_file()
    assert settings.data_dir == tmp_path / "data"  # data stays relative to the current folder


def test_config_paths_resolve_against_the_file_and_unnamed_ones_default(tmp_path: Path) -> None:
    site = tmp_path / "sitio"
    site.mkdir()
    (site / "config.yaml").write_text("rules_dir: mis_reglas\ndata_dir: datos\n")
    settings = load_settings(site / "config.yaml", env={})
    assert settings.rules_dir == site / "mis_reglas"
    assert settings.data_dir == site / "datos"
    assert settings.templates_dir == default_policy_dir("templates")


def test_init_copies_and_never_overwrites(tmp_path: Path) -> None:
    written = init_directory(tmp_path / "inst")
    assert [p.name for p in written] == ["config.yaml", *POLICY_DIRS]
    settings = load_settings(written[0], env={})
    assert settings.rules_dir == tmp_path / "inst" / "rules"
    assert check_policy(settings) == []
    with pytest.raises(ConfigError, match="no sobrescribe"):
        init_directory(tmp_path / "inst")


def test_policy_check_lists_problems_of_every_file(tmp_path: Path) -> None:
    init_directory(tmp_path / "inst")
    rules = tmp_path / "inst" / "rules" / "apelacion.yaml"
    rules.write_text(rules.read_text().replace("term_days: 30", "term_days: treinta"))
    machine = tmp_path / "inst" / "state_machines" / "oficio.yaml"
    machine.write_text(machine.read_text() + "\nestado_raro: 1\n")
    calendar = tmp_path / "inst" / "rules" / "calendar.yaml"
    calendar.write_text(calendar.read_text() + "\nclave_rara: 1\n")
    settings = policy_settings(tmp_path / "inst", load_settings(env={}))
    problems = check_policy(settings)
    assert any(p.startswith(f"{rules}:") for p in problems), problems
    assert any(p.startswith(f"{machine}:") for p in problems), problems
    assert any(p.startswith(f"{calendar}:") for p in problems), problems
    for problem in problems:
        if problem.startswith(str(machine)):
            assert problem.split(":")[1].isdigit(), problem  # file:line: message
