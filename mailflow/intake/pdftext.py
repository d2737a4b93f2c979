"""Text and form fields of an attached PDF, read within fixed time and memory bounds (pypdf).

How the bound is kept. Every read runs under tight pypdf limits (pypdf >= 7 `Configuration`,
applied through its context variable, so nothing global changes): inflated output per stream,
decoding work, content-stream parsing work, form XObject invocations, page-tree and form-field
sizes. Loops in the object graph are detected by pypdf (cycle checks) and any `RecursionError`
is caught. On top of that a wall-clock deadline is checked between pages and `max_pages` caps
the pages read.

- Small files (up to `ISOLATE_ABOVE` bytes, the normal one- or two-page request, ~3-10 ms) are
  read in-process: with those limits a small file cannot inflate or expand into unbounded work.
- Larger files, or any call with `isolate=True`, are read in a forked child process with
  `RLIMIT_AS` (address space) and `RLIMIT_CPU` set, whose result comes back through a pipe and
  which is killed when the deadline passes. This costs one fork (~5-10 ms) and gives a hard
  guarantee whatever pypdf does. Without `os.fork` (not POSIX) the in-process path is used.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import resource
import select
import signal
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NoReturn

from mailflow.intake.pdflibs import PYPDF, preload

if TYPE_CHECKING:
    from pypdf import PdfReader

# pypdf (~0.15 s to import) is imported when the first PDF is read, not when the service
# starts: most requests carry none
logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed mail attachments are routine

ISOLATE_ABOVE = 1 << 20  # bytes: larger files are read in a child process
MEMORY_HEADROOM = 512 << 20  # bytes of address space the child may add to what it inherits
MAX_TEXT_CHARS = 500_000
_LIMITS: dict[str, int] = {
    "zlib_maximum_output_length": 16_000_000,
    "lzw_maximum_output_length": 16_000_000,
    "run_length_maximum_output_length": 16_000_000,
    "brotli_maximum_output_length": 16_000_000,
    "array_based_stream_maximum_output_length": 16_000_000,
    "stream_decoding_work_maximum_length": 48_000_000,
    "stream_parsing_work_maximum_count": 400_000,
    "xform_maximum_invocations_per_extraction": 200,
    "page_tree_maximum_entries": 20_000,
    "page_tree_maximum_depth": 50,
    "page_tree_maximum_page_entries": 200_000,
    "form_fields_maximum_entries": 5_000,
    "form_fields_maximum_depth": 20,
    "xmp_maximum_input_length": 1_000_000,
}


@dataclass(frozen=True)
class PdfContent:
    """What could be read from one PDF; `error` says in Spanish why reading failed or stopped."""

    text: str = ""
    form_fields: dict[str, str] = field(default_factory=dict)
    pages: int = 0
    encrypted: bool = False
    error: str | None = None


def read_pdf(
    data: bytes, *, max_pages: int = 20, seconds: float = 5.0, isolate: bool | None = None
) -> PdfContent:
    """Read text and form fields from `data`; never raises, never exceeds the bounds."""
    if b"%PDF-" not in data[:1024]:
        return PdfContent(error="el archivo no es un PDF")
    if isolate is None:
        isolate = len(data) > ISOLATE_ABOVE
    preload(PYPDF)  # before any fork: an isolated read's child inherits it

    if isolate and hasattr(os, "fork"):
        return _read_in_child(data, max_pages, seconds)
    return _read_guarded(data, max_pages, seconds)


def _read_guarded(data: bytes, max_pages: int, seconds: float) -> PdfContent:
    from pypdf import apply_configuration, get_configuration

    deadline = time.monotonic() + seconds
    try:
        with apply_configuration(get_configuration().with_overwrites(**_LIMITS)):
            return _read(data, max_pages, seconds, deadline)
    except MemoryError:
        return PdfContent(error="lectura del PDF excedió el límite de memoria")
    except RecursionError:
        return PdfContent(error="PDF dañado: estructura de objetos circular o demasiado profunda")
    except Exception as exc:
        return PdfContent(error=_damaged(exc))


def _read(data: bytes, max_pages: int, seconds: float, deadline: float) -> PdfContent:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    encrypted = reader.is_encrypted
    if encrypted and not _opens_without_password(reader):
        return PdfContent(encrypted=True, error="PDF cifrado con contraseña")
    content = PdfContent(pages=len(reader.pages), encrypted=encrypted)
    try:
        content = replace(content, form_fields=_form_fields(reader))
    except Exception as exc:  # a broken form must not hide the text
        content = replace(content, error=_damaged(exc))
    texts: list[str] = []
    for number, page in enumerate(reader.pages):
        if number >= max_pages:
            break
        if time.monotonic() > deadline:
            return replace(content, text=_clean("\n".join(texts)), error=_timeout(seconds))
        try:
            texts.append(page.extract_text())
        except Exception as exc:
            return replace(content, text=_clean("\n".join(texts)), error=_damaged(exc))
    return replace(content, text=_clean("\n".join(texts)))


def _opens_without_password(reader: PdfReader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _form_fields(reader: PdfReader) -> dict[str, str]:
    fields = reader.get_fields() or {}
    values: dict[str, str] = {}
    for name, spec in fields.items():
        if spec.get("/FT") == "/Sig":
            continue
        value = _field_text(spec.get("/V"))
        if value:
            values[str(name)] = value
    return values


def _field_text(value: Any) -> str:
    from pypdf.generic import ArrayObject

    if value is None:
        return ""
    if isinstance(value, list | ArrayObject):
        return ", ".join(filter(None, (_field_text(item) for item in value)))
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    text = str(value)
    if text.startswith("/"):  # checkbox and radio states are PDF names: /Yes, /Off, /Opcion1
        text = text[1:]
    return _clean(text)


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")


def _clean(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()[:MAX_TEXT_CHARS]


def _damaged(exc: BaseException) -> str:
    """A reading failure in Spanish; pypdf's English message is not shown to people."""
    if type(exc).__name__ == "LimitReachedError":
        return "PDF sospechoso: excede los límites de lectura (descompresión o contenido excesivo)"
    return "PDF dañado: su estructura no se puede leer"


def _timeout(seconds: float) -> str:
    return f"lectura del PDF excedió el tiempo límite ({seconds:g} s)"


def _read_in_child(data: bytes, max_pages: int, seconds: float) -> PdfContent:
    """Fork, read in the child under rlimits, and wait for the pickled result until the deadline."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child_main(write_end, data, max_pages, seconds)
    os.close(write_end)
    try:
        received = _collect(read_end, time.monotonic() + seconds + 0.5)
    finally:
        os.close(read_end)
        _reap(pid)
    if received is None:
        return PdfContent(error=_timeout(seconds))
    return _unpickle(received) or PdfContent(
        error="lectura del PDF excedió el límite de memoria o falló el lector"
    )


def _child_main(write_end: int, data: bytes, max_pages: int, seconds: float) -> NoReturn:
    status = 1
    try:
        _limit_child(seconds)
        payload = pickle.dumps(_read_guarded(data, max_pages, seconds))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        status = 0
    finally:
        os._exit(status)  # never run the parent's cleanup (atexit, buffered files) in the child


def _unpickle(payload: bytes) -> PdfContent | None:
    try:
        result = pickle.loads(payload)  # written by our own child process
    except Exception:
        return None
    return result if isinstance(result, PdfContent) else None


def _limit_child(seconds: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    address_space = _current_address_space() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    cpu = int(seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def _current_address_space() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 1 << 30


def _collect(fd: int, deadline: float) -> bytes | None:
    """Read the child's whole output, or None when the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> None:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
