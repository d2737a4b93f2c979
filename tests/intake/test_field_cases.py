"""Field cases (mail shaped as Outlook, Gmail and phones send it) decided as their expected.json says."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.ops.checking import check_bytes

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "fixtures" / "field_cases"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CASES / "expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def app() -> App:
    settings = load_settings(ROOT / "config.yaml", env={})
    roots = (CASES / "trust-ca.pem",)
    signatures = settings.signatures.model_copy(update={"trust_roots": roots})
    built = App(settings.model_copy(update={"signatures": signatures}))
    built.validate()
    return built


def _plain(value: object) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9@.]+", "", text)


def _same(field: str, want: str, got: str | None) -> bool:
    """The comparison of the shared score.py: phones by their last 9 digits, names folded."""
    if got is None:
        return False
    if field == "telefono":
        return re.sub(r"\D", "", got)[-9:] == re.sub(r"\D", "", want)[-9:]
    if field == "nacionalidad":
        return _plain(got)[:4] == _plain(want)[:4]
    if field == "denuncia_policial":
        return bool(got)
    return _plain(got) == _plain(want)


def test_every_case_file_is_present() -> None:
    assert {p.name for p in CASES.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_field_case(name: str, app: App) -> None:
    want = EXPECTED[name]
    decision = check_bytes(app, (CASES / name).read_bytes())
    detail = f"reasons={list(decision.reasons)} fields={decision.fields}"
    assert decision.tramite == want["tramite"], detail
    assert decision.disposition in (want["disposition"], *want.get("accept_also", ())), detail
    for field, value in want.get("fields", {}).items():
        assert _same(field, value, decision.fields.get(field)), f"{field}: {detail}"
    assert sorted(decision.missing) == sorted(want["missing"]), detail
    assert decision.signature.status == want["signature"], detail
