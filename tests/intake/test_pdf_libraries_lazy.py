"""The PDF libraries load with the first PDF, not when the service starts.

pyhanko's validation stack and pypdf take ~0.7 s of CPU to import — about a fifth of `mailflow
run`'s start-up — and most requests carry no PDF. Checked in a fresh interpreter: start-up as
`mailflow run` does it (settings with trust roots, every start-up check, the engine's
pipeline), then a plain request read and decided, then a signed recurso.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.cases_support import mail
from tests.support.fixtures_pki import PkiSet, SignedPdfFactory
from tests.support.mailservice import write_config

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["pypdf", "pyhanko.sign.validation", "pyhanko.pdf_utils.reader"]
TO = "mesadepartes@cepr.mailflow.localhost"
RECURSO = (  # as in tests/pipeline/test_intake_pipeline.py: complete, accepted when signed
    "Interpongo recurso de reconsideración.\n"
    "Motivo: no estoy de acuerdo con la denegatoria de mi solicitud\n"
    "Nombres y apellidos: Juan Pérez Quispe\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
)

SCRIPT = """
import datetime as dt, json, sys
from pathlib import Path
from mailflow.app import App
from mailflow.config import load_settings
from mailflow.ops.startup import verify
from mailflow.runners.engine import pipeline_handling
from mailflow.runners.reading import parse_raw

config, plain, signed, heavy = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
loaded = lambda: [m for m in heavy if m in sys.modules]
app = App(load_settings(config, env={}))
verify(app, {})
pipeline_handling(app)
report = {"startup": loaded()}
now = dt.datetime.now(dt.UTC)
def decide(path):
    return app.intake.decide(parse_raw(app, path.read_bytes()), received=now).disposition
report["plain"] = [decide(plain), loaded()]
report["signed"] = [decide(signed), loaded()]
print(json.dumps(report))
"""


def test_start_up_and_plain_requests_do_not_import_the_pdf_libraries(
    tmp_path: Path, test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    config, signed = _config_and_signed_recurso(tmp_path, test_pki, signed_pdf_factory)
    plain = tmp_path / "plain.eml"
    plain.write_bytes(mail("Actualización de datos", "Nombre: Juan Pérez Quispe", to=TO))
    report = _in_fresh_interpreter(SCRIPT, config, plain, signed, *HEAVY)
    assert report["startup"] == []
    assert report["plain"][1] == []
    disposition, loaded = report["signed"]
    assert loaded == HEAVY  # read when the PDF came, and its signature checked
    assert disposition == "accept", report


BUDGET_SCRIPT = """
import datetime as dt, json, sys, time
from pathlib import Path
from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.budget import Budget
from mailflow.runners.reading import parse_raw
from mailflow.runners.sandbox import SandboxPool

config, signed, cpu = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
app = App(load_settings(config, env={}))
intake = app.intake
now = dt.datetime.now(dt.UTC)
msg = parse_raw(app, signed.read_bytes())

def work(task):
    started = time.process_time()
    disposition = intake.decide(msg, received=now).disposition
    return disposition, time.process_time() - started

pool = SandboxPool(work, Budget(cpu))
first = pool.run(None)
again = pool.run(None)  # the same child: the libraries are loaded by now
print(json.dumps([first.value, first.exceeded, again.value, again.exceeded]))
"""


def test_a_signed_pdf_first_read_in_a_child_is_not_charged_the_libraries_import(
    tmp_path: Path, test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    """The first signed PDF a reader child sees loads pypdf and pyhanko (~0.7 s of CPU): that
    one-time cost is the process's, not the message's. With a CPU budget below it (the
    configuration allows 1 s, and a message's own reading is a fraction of that) the message
    is still read and decided, not sent to staff unread for running out of time."""
    config, signed = _config_and_signed_recurso(tmp_path, test_pki, signed_pdf_factory)
    first, exceeded, again, exceeded_again = _in_fresh_interpreter(
        BUDGET_SCRIPT, config, signed, "0.5"
    )
    assert (exceeded, exceeded_again) == (None, None)
    assert first[0] == again[0] == "accept"
    assert again[1] < 0.25, again  # the message's own reading: well within the budget


def _config_and_signed_recurso(
    tmp_path: Path, test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> tuple[Path, Path]:
    """(a config.yaml trusting the test PKI, a complete recurso .eml with the applicant's
    signed escrito) under tmp_path."""
    roots = [str(p) for p in test_pki.trust_root_paths]
    config = write_config(tmp_path, None, None, signatures={"trust_roots": roots})
    signed = tmp_path / "signed.eml"
    escrito = ["Recurso de Reconsideración", "Nombre: Juan Pérez Quispe", "Interpongo recurso"]
    pdf = signed_pdf_factory(escrito)
    signed.write_bytes(
        mail("Recurso de Reconsideración", RECURSO, to=TO,
             attachments=(("recurso.pdf", pdf),))
    )  # fmt: skip
    return config, signed


def _in_fresh_interpreter(script: str, *args: object) -> Any:
    """Run `script` with `args` in a new Python (this checkout on its path); the JSON it
    printed last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
