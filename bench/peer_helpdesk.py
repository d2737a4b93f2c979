"""The peer: django-helpdesk's `get_email` draining the same Dovecot mailbox into the same SMTP sink.

django-helpdesk 2.6.1 (PyPI) is installed on first use into its own virtualenv under
`bench/.peer/` (git-ignored), so its Django never meets mailflow's dependencies. Each run gets a
fresh Django project in a temporary folder: SQLite on disk, one IMAP queue pointing at the
benchmark's Dovecot account, the shipped e-mail templates (so every new ticket sends the
submitter an acknowledgment, as mailflow does) and Django's SMTP backend pointing at the sink.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / ".peer"
PEER_REQUIREMENT = "django-helpdesk==2.6.1"
INSTALL_TIMEOUT_S = 900.0

SETTINGS = string.Template("""\
SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
SITE_ID = 1
USE_TZ = True
TIME_ZONE = "America/Lima"
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": $db}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIA_ROOT = $media
STATIC_URL = "/static/"
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = $smtp_host
EMAIL_PORT = $smtp_port
DEFAULT_FROM_EMAIL = "mesadepartes@bench.example"
HELPDESK_TEAMS_MODE_ENABLED = False
LOGGING = {"version": 1, "disable_existing_loggers": True}
""")

URLS = """\
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
"""

QUEUE = """\
from helpdesk.models import Queue
Queue.objects.create(
    title="Mesa de partes", slug="mesa", email_address="mesadepartes@bench.example",
    allow_email_submission=True, email_box_type="imap", email_box_host={host!r},
    email_box_port={port!r}, email_box_ssl=False, email_box_user={user!r},
    email_box_pass={password!r}, email_box_imap_folder="INBOX", email_box_interval=0,
)
"""


@dataclass(frozen=True)
class PeerRun:
    """One drain: how many seconds `get_email` took and the messages it found."""

    seconds: float
    messages: int

    @property
    def messages_per_s(self) -> float:
        return round(self.messages / self.seconds, 1) if self.seconds else 0.0


def peer_python() -> Path:
    """The peer virtualenv's interpreter, installing django-helpdesk there on first use.

    Raises RuntimeError with pip's output when the install fails.
    """
    python = PEER_DIR / "venv" / "bin" / "python"
    stamp = PEER_DIR / "venv" / f".installed-{PEER_REQUIREMENT}"
    if stamp.exists():
        return python
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_DIR / "venv")], check=True)
    pip = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            PEER_REQUIREMENT,
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"installing {PEER_REQUIREMENT} failed:\n{pip.stdout}{pip.stderr}")
    stamp.touch()
    return python


def _manage(python: Path, project: Path, *args: str, stdin: str | None = None) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": str(project)}
    done = subprocess.run(
        [str(python), "-m", "django", *args],
        cwd=project,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"django-helpdesk {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def drain(
    project: Path,
    *,
    imap_host: str,
    imap_port: int,
    user: str,
    password: str,
    smtp_host: str,
    smtp_port: int,
    messages: int,
) -> PeerRun:
    """Set up a fresh django-helpdesk in `project` (an empty folder) and time one `get_email`.

    The mailbox must already hold `messages` messages; the timed part is `get_email` alone
    (process start-up included, as for `mailflow run --once`).
    """
    python = peer_python()
    project.mkdir(parents=True, exist_ok=True)
    (project / "settings.py").write_text(
        SETTINGS.substitute(
            db=repr(str(project / "helpdesk.sqlite3")),
            media=repr(str(project / "media")),
            smtp_host=repr(smtp_host),
            smtp_port=repr(smtp_port),
        ),
        encoding="utf-8",
    )
    (project / "urls.py").write_text(URLS, encoding="utf-8")
    _manage(python, project, "migrate", "--no-input", "-v", "0")
    _manage(python, project, "loaddata", "emailtemplate", "-v", "0")
    queue = QUEUE.format(host=imap_host, port=imap_port, user=user, password=password)
    _manage(python, project, "shell", "-c", textwrap.dedent(queue))
    started = time.perf_counter()
    _manage(python, project, "get_email")
    return PeerRun(time.perf_counter() - started, messages)
