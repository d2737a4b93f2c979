"""The built wheel, installed (not editable) in a fresh virtualenv, runs from an empty folder.

The wheel is built from a copy of the source tree (the repository is not touched) without
build isolation (setuptools and wheel come from the test extras); the fresh virtualenv gets
the wheel with `--no-deps --no-index` and borrows the already-installed dependencies through
a .pth file, so the test is quick and needs no registry. Only MAILFLOW_* environment overrides
configure it: no config.yaml, no policy folders in the current directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailflow.documents.pki import create_demo_pki
from tests.support.dovecot import DovecotAccount, free_port
from tests.support.mail_requests import request
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "data", "bench", "*.egg-info", "__pycache__", ".*_cache"
)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh virtualenv with the mailflow wheel installed in it."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(base / "dist"), str(src)]
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("mailflow-*.whl")
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site = Path(purelib.stdout.strip())
    (site / "_mailflow_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", str(wheel)]
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    yield venv / "bin"


def mailflow(
    bindir: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script, with no MAILFLOW_* or PYTHONPATH from the test process."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_") and k != "PYTHONPATH"
    }
    return _run([str(bindir / "mailflow"), *args], cwd=cwd, env={**clean, **(env or {})})


def test_wheel_carries_the_policy_and_imports_from_the_venv(
    installed: Path, tmp_path: Path
) -> None:
    code = (
        "import mailflow, mailflow.policy_files as p; print(mailflow.__file__); "
        "print(p.default_policy_root())"
    )
    shown = _run([str(installed / "python"), "-c", code], cwd=tmp_path)
    module, policy = shown.stdout.split()
    venv = str(installed.parent)
    assert module.startswith(venv) and policy.startswith(venv), shown.stdout + shown.stderr
    assert policy.endswith("mailflow/_policy")
    for name in ("rules/fields.yaml", "state_machines/recurso.yaml", "templates/documents/cargo.yaml",
                 "templates/web/login.html", "samples/04_apelacion.eml", "config.yaml"):  # fmt: skip
        assert (Path(policy) / name).is_file(), name
    package = Path(module).parent
    for name in ("web/static/desk.css", "web/static/desk.js", "store/migrations/script.py.mako"):
        assert (package / name).is_file(), name


def test_check_and_calendar_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "vacio"
    empty.mkdir()
    sample = tmp_path / "solicitud.eml"
    shutil.copyfile(ROOT / "samples" / "04_apelacion.eml", sample)
    checked = mailflow(installed, "check", "--json", str(sample), cwd=empty)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["tramite"] == "apelacion"
    due = mailflow(
        installed, "calendar", "due", "--received", "2026-07-27T09:00", "--days", "3", cwd=empty
    )
    assert due.returncode == 0, due.stderr
    assert due.stdout.strip() == "2026-08-03"  # 28 and 29 July (Fiestas Patrias) skipped
    assert list(empty.iterdir()) == []


def test_run_once_with_environment_overrides_only(
    installed: Path, tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    empty = tmp_path / "vacio"
    empty.mkdir()
    pki = create_demo_pki(tmp_path / "claves")
    imap_account.append([request(i) for i in range(3)])
    env = {
        "MAILFLOW_IMAP_URL": imap_account.url(),
        "MAILFLOW_SMTP_URL": smtp_sink.url,
        "MAILFLOW_DATA_DIR": str(tmp_path / "datos"),
        "MAILFLOW_SIGNING_PKCS12": str(pki.signer_p12),
        "MAILFLOW_SIGNING_PASSWORD": pki.signer_p12.with_name("signer-password.txt")
        .read_text()
        .strip(),
        # prórroga and duplicado are issued automatically: their oficios need this address
        "MAILFLOW_MIGRACIONES_ADDRESS": "oficios@migraciones.example",
    }
    result = mailflow(installed, "run", "--once", cwd=empty, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ingresados=3 procesados=3" in result.stdout and "enviados=3" in result.stdout
    assert len(smtp_sink.snapshot()) == 3
    assert imap_account.count("INBOX") == 0
    assert (tmp_path / "datos" / "mailflow.db").exists()
    assert list(empty.iterdir()) == []
    health = mailflow(installed, "health", cwd=empty, env=env)
    report = json.loads(health.stdout)
    assert report["migrated"] and report["outbox"] == {"sent": 3}, health.stdout


def test_init_then_policy_check(installed: Path, tmp_path: Path) -> None:
    made = mailflow(installed, "init", "institucion", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    site = tmp_path / "institucion"
    assert "# mailflow configuration" in (site / "config.yaml").read_text()
    assert (site / "rules" / "fields.yaml").is_file()
    checked = mailflow(installed, "policy", "check", "institucion", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "Política válida" in checked.stdout
    by_config = mailflow(
        installed, "policy", "check", cwd=tmp_path,
        env={"MAILFLOW_CONFIG": str(site / "config.yaml")},
    )  # fmt: skip
    assert by_config.returncode == 0 and str(site / "rules") in by_config.stdout
    machine = site / "state_machines" / "recurso.yaml"
    machine.write_text(
        machine.read_text().replace("issue_document: cargo", "issue_document: carta", 1)
    )
    broken = mailflow(installed, "policy", "check", "institucion", cwd=tmp_path)
    assert broken.returncode == 1
    first = broken.stderr.splitlines()[0]
    assert first.startswith(f"{machine}:") and "carta" in first, broken.stderr
    assert first.split(":")[1].isdigit()  # file:line: message
    again = mailflow(installed, "init", "institucion", cwd=tmp_path)
    assert again.returncode == 2 and "no sobrescribe" in again.stderr


def test_serve_uses_the_packaged_web_templates_and_static_files(
    installed: Path, tmp_path: Path
) -> None:
    pki = create_demo_pki(tmp_path / "datos" / "keys")  # `mailflow keys demo` in the data dir
    assert pki.signer_p12.exists()
    port = free_port()
    env = {
        **os.environ,
        "MAILFLOW_DATA_DIR": str(tmp_path / "datos"),
        "MAILFLOW_MIGRACIONES_ADDRESS": "oficios@migraciones.example",
    }
    env = {k: v for k, v in env.items() if k not in ("MAILFLOW_CONFIG", "PYTHONPATH")}
    proc = subprocess.Popen(
        [str(installed / "mailflow"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        page = ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    page = r.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert "Contraseña" in page, proc.stderr.read().decode() if proc.poll() is not None else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/desk.css", timeout=5) as r:
            assert r.status == 200 and r.read()
    finally:
        proc.terminate()
        proc.wait(30)
        assert proc.stderr is not None
        proc.stderr.close()
