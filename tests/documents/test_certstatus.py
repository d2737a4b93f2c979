"""`mailflow health` reports the signing certificate's expiry and the trust roots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.config import Settings
from mailflow.documents.certstatus import signing_status, trust_root_status
from mailflow.documents.pki import create_demo_pki

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _settings(tmp_path: Path, **updates: object) -> Settings:
    return Settings().model_copy(update={"data_dir": tmp_path, **updates})


@pytest.mark.parametrize(
    ("days_left", "problems", "warnings"), [(400, 0, 0), (20, 0, 1), (-3, 1, 0)]
)
def test_signing_certificate_expiry(
    tmp_path: Path, days_left: int, problems: int, warnings: int
) -> None:
    pki = create_demo_pki(tmp_path / "keys")
    report, found_problems, found_warnings = signing_status(_settings(tmp_path), NOW)
    assert report["loaded"]
    not_after = dt.datetime.fromisoformat(report["not_after"])
    later = not_after - dt.timedelta(days=days_left)
    report, found_problems, found_warnings = signing_status(_settings(tmp_path), later)
    assert (len(found_problems), len(found_warnings)) == (problems, warnings)
    if warnings:
        assert f"vence el {not_after:%Y-%m-%d}" in found_warnings[0]
        assert report["days_left"] == days_left
    if problems:
        assert f"venció el {not_after:%Y-%m-%d}" in found_problems[0]
    assert pki.signer_p12.exists()


def test_signing_key_missing_is_a_problem(tmp_path: Path) -> None:
    report, problems, _ = signing_status(_settings(tmp_path), NOW, env={})
    assert report == {"loaded": False}
    assert "signing.pkcs12: no hay certificado de firma" in problems[0]


def test_trust_roots_loaded_missing_or_broken(tmp_path: Path) -> None:
    pki = create_demo_pki(tmp_path / "keys")
    sig = Settings().signatures
    loaded = _settings(tmp_path, signatures=sig.model_copy(update={"trust_roots": (pki.ca_pem,)}))
    report, problems, warnings = trust_root_status(loaded)
    assert report["certificates"] == 1 and problems == [] and warnings == []
    report, problems, warnings = trust_root_status(_settings(tmp_path))
    assert report["certificates"] == 0 and "ninguna firma" in warnings[0]
    bad = tmp_path / "roto.pem"
    bad.write_text("no es un certificado")
    broken = _settings(tmp_path, signatures=sig.model_copy(update={"trust_roots": (bad,)}))
    report, problems, warnings = trust_root_status(broken)
    assert problems and str(bad) in problems[0]
