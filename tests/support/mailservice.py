"""Helpers to run the real `mailflow run` service in a subprocess against test servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from mailflow.documents.pki import create_demo_pki
from mailflow.store.filemodes import FILE_MODE, FOLDER_MODE
from tests.support.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parents[2]
MIGRACIONES = "oficios@migraciones.example.org"


def write_config(tmp: Path, imap_url: str | None, smtp_url: str | None, **sections: Any) -> Path:
    """A config.yaml in tmp: the repository's, with data in tmp and quick retries and polls."""
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    for key in ("rules_dir", "state_machines_dir", "templates_dir"):
        data[key] = str(REPO / data.get(key, key.removesuffix("_dir")))
    data["data_dir"] = str(tmp / "data")
    data["database_url"] = None
    data["imap"] = {**data.get("imap", {}), "url": imap_url, "poll_seconds": 2}
    data["smtp"] = {
        **data.get("smtp", {}),
        "url": smtp_url,
        "retry_base_seconds": 0.05,
        "max_attempts": 30,
        "timeout_seconds": 5,
    }
    data.setdefault("web", {})["enabled"] = False
    data["migraciones"] = {**(data.get("migraciones") or {}), "address": MIGRACIONES}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    if "signing" not in sections:  # `mailflow keys demo` in the data dir: run refuses without a key
        _owner_only_demo_keys(tmp / "data", data["institution"]["name"])
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _owner_only_demo_keys(data_dir: Path, org: str) -> None:
    """The demo keys under data_dir/keys, owner-only as mailflow itself leaves its data."""
    create_demo_pki(data_dir / "keys", org=org)
    for path in (data_dir, *data_dir.rglob("*")):
        path.chmod(FOLDER_MODE if path.is_dir() else FILE_MODE)


def start_service(config: Path, *, once: bool, log: Path) -> subprocess.Popen[bytes]:
    """`mailflow run [--once]` in a subprocess (its own process, killable)."""
    code = (
        "import sys; from mailflow.config import load_settings; from mailflow.ops.runcmd import run; "
        f"sys.exit(run(load_settings(), once={once!r}, workers=1))"
    )
    env = {**os.environ, "MAILFLOW_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def replies_per_request(sink: SmtpSink) -> Counter[str]:
    """How many replies the sink got for each request Message-ID (by In-Reply-To)."""
    counts: Counter[str] = Counter()
    for captured in sink.snapshot():
        counts[str(captured.message["In-Reply-To"]).strip()] += 1
    return counts
