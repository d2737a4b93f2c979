"""Data files are owner-only after a demo-like run: database, documents, captured mail, keys,
journals (0600 files, 0700 folders; issue 14, item 8)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from mailflow.config import Settings
from mailflow.store.filemodes import create_private_file, secure_data_folders
from tests.support.mailservice import REPO, write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_IMODE(mode) & 0o077:
            found.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(root)}")
    return found


def test_demo_run_leaves_only_owner_only_files(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailflow",
            "--config",
            str(config),
            "demo",
            "--smtp-port",
            str(_free_port()),
            "--web-port",
            str(_free_port()),
            "--exit-after-samples",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout.decode()[-2000:] + result.stderr.decode()[-2000:]
    data = tmp_path / "data"
    names = {p.name for p in data.rglob("*")}
    assert "mailflow.db" in names
    assert any(n.endswith(".pdf") for n in names), sorted(names)  # issued documents
    assert any(n.endswith(".eml") for n in names), sorted(names)  # captured mail
    assert any(n.endswith((".p12", ".key", ".pem")) for n in names), sorted(names)  # keys
    assert _open_to_others(data) == []


def test_existing_data_folder_is_tightened_and_new_database_is_private(tmp_path: Path) -> None:
    data = tmp_path / "viejo"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    outbox = tmp_path / "salida"
    secure_data_folders(Settings(data_dir=data, outbox_dir=outbox))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    db = data / "sub" / "mailflow.db"
    create_private_file(db)
    create_private_file(db)  # idempotent
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
