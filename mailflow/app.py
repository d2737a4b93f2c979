"""The application object: everything built once from settings and passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mailflow.catalogue import Catalogue, load_catalogue
from mailflow.classify import Classifier
from mailflow.config import Settings
from mailflow.dias_habiles import Calendario
from mailflow.fields import FieldVocabulary, load_field_vocabulary
from mailflow.intake import Intake
from mailflow.signature import load_trust_roots

FIELDS_FILE = "fields.yaml"


@dataclass
class App:
    """One mailflow installation: settings plus the definitions and services built from them."""

    settings: Settings

    @cached_property
    def vocabulary(self) -> FieldVocabulary:
        return load_field_vocabulary(self.settings.rules_dir / FIELDS_FILE)

    @cached_property
    def catalogue(self) -> Catalogue:
        return load_catalogue(self.settings.rules_dir, self.vocabulary.ids())

    @cached_property
    def calendario(self) -> Calendario:
        return Calendario.from_settings(self.settings.calendar)

    @cached_property
    def classifier(self) -> Classifier:
        c = self.settings.classification
        return Classifier(self.catalogue, c.threshold, c.tie_margin)

    @cached_property
    def intake(self) -> Intake:
        s = self.settings
        return Intake(
            self.catalogue,
            self.vocabulary,
            self.classifier,
            self.calendario,
            load_trust_roots(list(s.signatures.trust_roots)),
            own_addresses=[m.address for m in s.mailboxes],
            own_domain=s.institution.domain,
            max_pdf_pages=s.limits.max_pdf_pages,
            pdf_seconds=s.limits.pdf_seconds,
        )

    def validate(self) -> None:
        """Load every definition now so a bad one fails at start-up, not on the first message."""
        _ = self.intake
