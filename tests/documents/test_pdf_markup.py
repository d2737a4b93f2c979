"""Markup in names never reaches reportlab as markup: SLA report (web and weekly email) and the
issued documents show it as text, and `<img src=...>` pulls in no file (issue 14, item 7)."""

from __future__ import annotations

import datetime as dt
import email
import io
import re
from email import policy
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import SimpleDocTemplate
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.config import Settings
from mailflow.documents.issuing import issue_document
from mailflow.documents.pdfmarkup import markup_text, text_paragraph
from mailflow.documents.pki import create_demo_pki
from mailflow.documents.signing import DocumentSigner
from mailflow.reports import export as reports
from mailflow.store.db import Database
from mailflow.store.models import Case, OutboxMessage, User
from mailflow.web import create_app
from tests.support.cases_seed import LIMA, seed_standard
from tests.support.documents_helpers import NOW, add_case, case_data, make_settings
from tests.support.web_seed import PASSWORD, seed_users, settings_for

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "mailflow" / "web" / "static"  # any local file would do; none may be embedded
HOSTILE = [
    "<b>Ana</b> Quispe",
    "Luis <i>Gómez",
    "<img src='{img}' width='400' height='400'/> Rosa",
    '<link href="file:///etc/passwd">Pepe</link> & Cía',
    "<para><font name='Nope'>Eva</font></para>",
    "Juan &amp; &#0; &bogus; \x00\x07 Ñandú\r\nPérez",
]


def _names(tmp_path: Path) -> list[str]:
    img = tmp_path / "secreto.png"
    from PIL import Image

    Image.new("RGB", (40, 40), "red").save(img)
    return [n.replace("{img}", str(img)) for n in HOSTILE]


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _images(pdf: bytes) -> int:
    reader = PdfReader(io.BytesIO(pdf))
    return sum(len(page.images) for page in reader.pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _name_cases(db: Database, names: list[str]) -> None:
    with db.session() as session:
        cases = session.scalars(select(Case).order_by(Case.id)).all()
        for case, name in zip(cases, names * len(cases), strict=False):
            case.applicant_name = name


def test_markup_text_escapes_everything_a_paragraph_would_read() -> None:
    assert markup_text("<b>x</b> & 'y' \"z\"") == (
        "&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39; &quot;z&quot;"
    )
    assert markup_text("a\r\nb\rc\nd\te\x00\x1b") == "a<br/>b<br/>c<br/>d e"
    assert markup_text(None) == ""
    style = getSampleStyleSheet()["Normal"]
    for value in [*HOSTILE, "&", "<", "]]>", "<![CDATA[x]]>", "\ud800"]:
        doc = SimpleDocTemplate(io.BytesIO())
        doc.build([text_paragraph(value, style)])  # never raises


def test_sla_pdf_over_http_shows_markup_as_text(sqlite_db: Database, tmp_path: Path) -> None:
    names = _names(tmp_path)
    seed_users(sqlite_db)
    with sqlite_db.session() as session:
        seed_standard(session)
    _name_cases(sqlite_db, names)
    settings = settings_for(tmp_path)
    settings = settings.model_copy(
        update={"institution": settings.institution.model_copy(update={"name": "<b>CEPR</b> &"})}
    )
    web = create_app(settings, sqlite_db)
    web.state.clock = lambda: dt.datetime(2026, 3, 16, 12, 0, tzinfo=LIMA)
    client = TestClient(web, follow_redirects=False)
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    data = {"username": "jefa", "password": PASSWORD, "csrf_token": csrf.group(1)}
    assert client.post("/login", data=data).status_code == 303
    response = client.get("/reportes/sla.pdf")
    assert response.status_code == 200, response.text[:300]
    text = _flat(_text(response.content))
    assert _flat("<b>CEPR</b> &") in text
    assert _flat("<b>Ana</b> Quispe") in text or _flat("Luis <i>Gómez") in text
    assert _images(response.content) == 0


def test_weekly_report_email_survives_markup_in_names(tmp_path: Path, sqlite_db: Database) -> None:
    names = _names(tmp_path)
    settings = Settings(
        database_url=sqlite_db.url.render_as_string(hide_password=False),
        rules_dir=ROOT / "rules",
        state_machines_dir=ROOT / "state_machines",
        templates_dir=ROOT / "templates",
    )
    app = App(settings)
    app.__dict__["database"] = sqlite_db
    with sqlite_db.session() as session:
        seed_standard(session)
        session.add(
            User(
                username="gestora",
                full_name="<b>Gestora</b>",
                role="manager",
                password_hash="x",
                active=True,
                email="gestora@example.org",
            )
        )
    _name_cases(sqlite_db, names)
    queued = reports.weekly_report_job(app, dt.datetime(2026, 3, 16, 7, 0, tzinfo=LIMA))
    assert len(queued) == 1
    with sqlite_db.session(readonly=True) as session:
        row = session.scalars(select(OutboxMessage)).one()
    msg = email.message_from_bytes(row.raw, policy=policy.default)
    [attachment] = list(msg.iter_attachments())
    pdf = attachment.get_content()
    text = _flat(_text(pdf))
    assert any(_flat(n.split("<img")[0]) in text for n in names[:2])
    assert _images(pdf) == 0


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> DocumentSigner:
    pki = create_demo_pki(tmp_path_factory.mktemp("keys"))
    return DocumentSigner.from_pkcs12(pki.signer_p12, pki.signer_password)


@pytest.mark.parametrize("kind", ["cargo", "oficio"])
def test_documents_show_markup_in_names_as_text(
    kind: str, tmp_path: Path, sqlite_db: Database, signer: DocumentSigner
) -> None:
    names = _names(tmp_path)
    settings = make_settings(tmp_path / "data")
    hostile = f"{names[0]} {names[2]} {names[3]}"
    with sqlite_db.session() as session:
        case = add_case(session, kind)
        data = case_data(case, kind, nombres_apellidos=hostile, motivo=names[5])
        doc = issue_document(session, settings, data, kind, "emision", NOW, signer=signer)
    pdf = (settings.data_dir / doc.path).read_bytes()
    text = _flat(_text(pdf))
    assert _flat("<b>Ana</b> Quispe") in text and _flat("& Cía") in text
    assert _images(pdf) == 0  # the QR is drawn as vectors; no file was pulled in
