"""A realistic mixed corpus for the benchmarks: every procedure, signed PDFs, automatic mail.

Built from the hand-checked request specs of `tests/corpus` (the same messages whose decisions
the corpus test asserts), made unique per message: each copy gets its own Message-ID and its
own sender address, as a burst of real applicants would (the daily reply cap is per address).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.corpus.cases import REQS
from tests.corpus.compose import Kit, Req, expect, make_kit, render
from tests.support.mail_requests import auto_reply, bounce
from tests.support.mail_requests import request as simple_request

KINDS = ("sin_pdf", "cargo", "pdf", "automatico")
# The default burst: most mail is plain text, some carries a PDF, some is automatic.
MIX: Mapping[str, float] = {"sin_pdf": 0.6, "cargo": 0.15, "pdf": 0.15, "automatico": 0.1}
UNKNOWN_LABEL = b"Fundamentos"
SENDER = re.compile(rb"^(From:[^\r\n]*?)([\w.+-]+)@([\w.-]+)", re.MULTILINE)


@dataclass
class CachedKit:
    """A test PKI whose PDFs are made and signed once per distinct content (signing is slow)."""

    kit: Kit
    cache: dict[tuple[object, ...], bytes] = field(default_factory=dict)

    def pdf(
        self,
        kind: str,
        lines: list[str],
        form: Mapping[str, str] | None = None,
        signer: str | None = None,
    ) -> bytes:
        key = (kind, tuple(lines), tuple(sorted((form or {}).items())), signer)
        if key not in self.cache:
            self.cache[key] = self.kit.pdf(kind, lines, form, signer)
        return self.cache[key]

    @property
    def ca_pem(self) -> Path:
        return self.kit.ca_pem


def pools() -> dict[str, list[Req]]:
    """The corpus specs by kind.

    sin_pdf: data in the body, no attachment (accepted, observed or for staff);
    cargo: complete, validly signed recursos that get a signed cargo PDF at once;
    pdf: every other request with a PDF (unsigned, untrusted, tampered, forms, denuncias).
    """
    sin_pdf = [r for r in REQS if r.pdf is None and r.denuncia is None and r.data_in == "body"]
    cargo = [
        r
        for r in REQS
        if r.tramite in ("reconsideracion", "apelacion")
        and r.pdf == "valid"
        and r.notificacion is None
        and expect(r).disposition == "accept"
    ]
    pdf = [r for r in REQS if r not in sin_pdf and r not in cargo]
    return {"sin_pdf": sin_pdf, "cargo": cargo, "pdf": pdf}


def unique_sender(raw: bytes, n: int) -> bytes:
    """The message with `+n` added to the local part of its From address."""
    return SENDER.sub(lambda m: m.group(1) + m.group(2) + b"+%d@" % n + m.group(3), raw, count=1)


def message(kind: str, n: int, kit: Kit | CachedKit, specs: Mapping[str, list[Req]]) -> bytes:
    """The n-th message of one kind (deterministic)."""
    if kind == "automatico":
        if n % 5 == 4:
            return bounce(n)
        return auto_reply(n)
    if kind == "sin_pdf" and n % 10 == 9:  # the suspended procedure: an informative reply
        return simple_request(n * 4 + 3)
    pool = specs[kind]
    req = pool[n % len(pool)]
    raw = render(replace(req, name=f"{req.name}-b{n}"), kit)  # type: ignore[arg-type]
    for retry in range(1, 20):
        if kind != "cargo" or UNKNOWN_LABEL not in raw:
            break
        # "Fundamentos del recurso" is not yet a known label of `motivo`: a cargo request
        # written that way is observed, so draw the layout again for this pool.
        raw = render(replace(req, name=f"{req.name}-b{n}.{retry}"), kit)  # type: ignore[arg-type]
    return unique_sender(raw, n)


def build(
    kit: Kit | CachedKit, count: int, mix: Mapping[str, float] = MIX, seed: int = 7
) -> list[tuple[str, bytes]]:
    """`count` messages drawn with the proportions of `mix`, shuffled; (kind, raw) pairs."""
    specs = pools()
    total = sum(mix.values())
    kinds: list[str] = []
    for kind, share in mix.items():
        kinds += [kind] * round(count * share / total)
    kinds = (kinds + [next(iter(mix))] * count)[:count]
    random.Random(seed).shuffle(kinds)
    seen: dict[str, int] = {}
    out = []
    for kind in kinds:
        n = seen.get(kind, 0)
        seen[kind] = n + 1
        out.append((kind, message(kind, n, kit, specs)))
    return out


def new_kit(directory: Path) -> CachedKit:
    """A fresh test PKI under `directory` (its CA must be a trust root of the engine)."""
    return CachedKit(make_kit(directory))
