"""Benchmark: official documents rendered and signed per second (one loaded signer, reused)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/ helpers

from mailflow.config import Settings
from mailflow.documents.pki import create_demo_pki
from mailflow.documents.qr import new_code, verification_url
from mailflow.documents.render import render_pdf
from mailflow.documents.signing import DocumentSigner, SignatureField
from mailflow.documents.templates import CaseData, ReceivedFile, build_context, fill, load_templates
from tests.support.documents_helpers import CAMPOS

KINDS = ("cargo", "oficio", "autorizacion_viaje")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=150, help="documents to issue")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    settings = Settings(templates_dir=root / "templates")
    templates = load_templates(root / "templates" / "documents")
    institution = settings.institution.model_dump()
    now = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        pki = create_demo_pki(Path(tmp))
        started = time.perf_counter()
        signer = DocumentSigner.from_pkcs12(pki.signer_p12, pki.signer_password)
        load_ms = (time.perf_counter() - started) * 1000
    render_s = sign_s = 0.0
    size = 0
    for i in range(args.n):
        kind = KINDS[i % len(KINDS)]
        case = CaseData(
            case_id=i,
            expediente=f"EXP-2026-{i:06d}",
            tramite={"cargo": "apelacion", "oficio": "prorroga_residencia"}.get(kind, kind),
            tramite_nombre="Recurso de Apelación",
            campos=CAMPOS,
            received_at=now,
            legal_receipt_day=now.date(),
            due_date=dt.date(2026, 12, 16),
            documentos=(ReceivedFile("recurso.pdf", "a" * 64, 1000),),
        )
        t0 = time.perf_counter()
        number = f"{i + 1:06d}-2026-CEPR/MRE" if kind == "oficio" else None
        context = build_context(
            case, institution=institution, number=number, issued_at=now, timezone="America/Lima"
        )
        code = new_code()
        rendered = render_pdf(
            fill(templates[kind], context, filler=templates.filler),
            institution=institution,
            code=code,
            url=verification_url(settings.institution.public_url, code),
            title=case.expediente,
        )
        t1 = time.perf_counter()
        signed = signer.sign(
            rendered.pdf, SignatureField(rendered.signature.page, rendered.signature.box)
        )
        t2 = time.perf_counter()
        render_s += t1 - t0
        sign_s += t2 - t1
        size += len(signed)
    total = render_s + sign_s
    print(f"documents: {args.n} (cargo, oficio, autorización de viaje in turn)")
    print(f"signer load (PKCS#12, once): {load_ms:.1f} ms")
    print(
        f"render: {render_s / args.n * 1000:.1f} ms/doc   sign: {sign_s / args.n * 1000:.1f} ms/doc"
    )
    print(f"throughput: {args.n / total:.1f} documents rendered+signed per second (1 core)")
    print(f"average size: {size / args.n / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
