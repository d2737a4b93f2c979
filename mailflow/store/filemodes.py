"""Owner-only data: the process umask and the modes of the folders that hold refugees' data."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from mailflow.config import Settings
from mailflow.errors import ConfigError

OWNER_ONLY_UMASK = 0o077  # new files 0600, new folders 0700
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def restrict_new_files() -> None:
    """Set the process umask so every file and folder created from now on (database, WAL and
    SHM, documents, captured mail, journals, keys, uploads) is readable by its owner only.

    Called at the start of each command-line entry point and of the service; it changes the
    whole process, so library code and tests that do not start the service are not affected.
    """
    os.umask(OWNER_ONLY_UMASK)


def data_folders(settings: Settings) -> list[Path]:
    """The folders that hold the installation's data: data_dir, outbox_dir and the SQLite
    database's folder when it lies elsewhere."""
    folders = [settings.data_dir]
    if settings.outbox_dir is not None:
        folders.append(settings.outbox_dir)
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        folders.append(Path(str(url.database)).parent)
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def secure_data_folders(settings: Settings) -> None:
    """Create the data folders 0700, and take group/other access away from existing ones that
    this user owns (files left 0644 by older versions become unreachable through them).

    Raises ConfigError naming the folder when it cannot be created or changed.
    """
    for folder in data_folders(settings):
        try:
            folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            info = folder.stat()
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                folder.chmod(FOLDER_MODE)
        except OSError as exc:
            raise ConfigError(f"no se pudo preparar la carpeta de datos {folder}: {exc}") from exc


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (a new SQLite database: SQLite
    then gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
