"""The application object: everything built once from settings and passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from mailflow.config import Settings
from mailflow.errors import DefinitionError

if TYPE_CHECKING:  # the heavy modules load on first use, so light commands start fast
    import jinja2

    from mailflow.cases.assignment import AssignmentRules
    from mailflow.cases.machines import Lifecycle, MachineDefinition
    from mailflow.cases.priority import Vocabulary
    from mailflow.clock.calendar_rules import CalendarRules
    from mailflow.clock.calendarios import Calendarios
    from mailflow.clock.dias_habiles import Calendario
    from mailflow.documents.signing import DocumentSigner, SignerSource
    from mailflow.documents.templates import DocumentTemplate
    from mailflow.intake.catalogue import Catalogue
    from mailflow.intake.classify import Classifier
    from mailflow.intake.clerk import Intake
    from mailflow.intake.fields import FieldVocabulary
    from mailflow.mail.oauth import TokenSource
    from mailflow.runners.reading import Reader
    from mailflow.store.db import Database

FIELDS_FILE = "fields.yaml"


@dataclass
class App:
    """One mailflow installation: settings plus the definitions and services built from them."""

    settings: Settings

    @cached_property
    def vocabulary(self) -> FieldVocabulary:
        """The field vocabulary of rules/fields.yaml (ids, labels, kinds, aliases); loaded once.
        Raises DefinitionError when the file is invalid.
        """
        from mailflow.intake.fields import load_field_vocabulary

        return load_field_vocabulary(self.settings.rules_dir / FIELDS_FILE)

    @cached_property
    def catalogue(self) -> Catalogue:
        """The procedures (rules/tramites/*.yaml) and off-catalogue topics, checked against the
        field vocabulary; loaded once. Raises DefinitionError on an invalid definition.
        """
        from mailflow.intake.catalogue import load_catalogue

        return load_catalogue(self.settings.rules_dir, self.vocabulary.ids())

    @cached_property
    def calendar_rules(self) -> CalendarRules:
        """rules/calendar.yaml: offices, días no laborables, regional holidays, suspensions."""
        from mailflow.clock.calendar_rules import CALENDAR_FILE, load_calendar_rules

        return load_calendar_rules(self.settings.rules_dir / CALENDAR_FILE)

    @cached_property
    def calendarios(self) -> Calendarios:
        """The legal calendar of every office (the receiving unit's calendar applies)."""
        from mailflow.clock.calendarios import Calendarios

        return Calendarios.from_settings(self.settings, self.calendar_rules)

    @cached_property
    def calendario(self) -> Calendario:
        """The default office's calendar (Lima unless `calendar.default_office` says otherwise)."""
        return self.calendarios.default

    def calendario_de(self, office: str | None) -> Calendario:
        """The calendar of a case's office (`Case.office`; None: the default office)."""
        return self.calendarios.for_office(office)

    @cached_property
    def assignment_rules(self) -> AssignmentRules:
        """rules/assignment.yaml: who receives new cases (validated against procedures, offices)."""
        from mailflow.cases.assignment import ASSIGNMENT_FILE, load_assignment_rules

        return load_assignment_rules(
            self.settings.rules_dir / ASSIGNMENT_FILE,
            self.catalogue.tramites,
            self.calendar_rules.offices,
        )

    @cached_property
    def vulnerability(self) -> Vocabulary:
        """rules/vulnerabilidad.yaml: categories, signal words, weights and who sees details."""
        from mailflow.cases.priority import VOCABULARY_FILE, load_vocabulary

        return load_vocabulary(self.settings.rules_dir / VOCABULARY_FILE)

    @cached_property
    def classifier(self) -> Classifier:
        """The subject/body Classifier over the catalogue, with settings.classification's threshold
        and tie margin (fractions 0–1).
        """
        from mailflow.intake.classify import Classifier

        c = self.settings.classification
        return Classifier(self.catalogue, c.threshold, c.tie_margin)

    @cached_property
    def intake(self) -> Intake:
        """The Intake that decides new messages: catalogue, vocabulary, classifier, the legal
        calendar, the trust roots of settings.signatures, our own mailboxes (never answered) and
        the PDF limits of settings.limits (pages, seconds).
        """
        from mailflow.intake.clerk import Intake
        from mailflow.intake.trust_roots import load_trust_roots

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

    @cached_property
    def machines(self) -> dict[str, MachineDefinition]:
        """The state machines of state_machines_dir by name, their reply templates checked against
        templates_dir. Raises DefinitionError on an invalid machine.
        """
        from mailflow.cases.machines import load_machines

        return load_machines(self.settings.state_machines_dir, self.settings.templates_dir)

    @cached_property
    def lifecycles(self) -> dict[str, Lifecycle]:
        """The Lifecycle (transitions, effects, timers) built from each machine, by machine name."""
        from mailflow.cases.machines import build_lifecycles

        return build_lifecycles(self.machines)

    @cached_property
    def templates(self) -> jinja2.Environment:
        """Jinja2 environment rooted at templates/ (replies/, documents/, web/).

        Templates are read once: they are checked at start-up (every variable they name must
        be one the engine gives), so an edit takes effect at the next start, checked, not
        half-way through a run (and no file is stat'ed per reply)."""
        import jinja2

        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.settings.templates_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html"]),
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=-1,  # every template stays compiled (a few dozen files)
        )

    @cached_property
    def signer_source(self) -> SignerSource:
        """Loads the institution's signer once and again only when its key file changes."""
        from mailflow.documents.signing import SignerSource

        return SignerSource(self.settings)

    @property
    def signer(self) -> DocumentSigner:
        """The institution's document signer for the key as it is now (a rotated PKCS#12 is
        picked up without a restart); parsed once per key, not per document."""
        return self.signer_source.current()

    @cached_property
    def document_templates(self) -> dict[str, DocumentTemplate]:
        """The document templates of templates/documents (oficios, constancias …) by kind."""
        from mailflow.documents.templates import load_templates

        return load_templates(self.settings.templates_dir / "documents")

    @cached_property
    def database(self) -> Database:
        """The Database on settings.effective_database_url (SQLite file or PostgreSQL), created on
        first use; the web may set it to the web's own Database instead.
        """
        from mailflow.store.db import Database

        return Database(self.settings.effective_database_url)

    @cached_property
    def mail_tokens(self) -> TokenSource | None:
        """The OAuth2 token source shared by IMAP and SMTP logins (None: password logins)."""
        import os

        from mailflow.mail.oauth import token_source

        return token_source(self.settings, os.environ)

    @cached_property
    def reader(self) -> Reader:
        """Parses and decides messages in sandboxed children under the per-message budget."""
        from mailflow.runners.reading import Reader

        return Reader(self)

    def validate(self) -> None:
        """Load every definition now so a bad one fails at start-up, not on the first message."""
        _ = self.intake
        _ = self.calendarios
        _ = self.assignment_rules
        _ = self.vulnerability
        for tramite in self.catalogue:
            if tramite.machine not in self.machines:
                raise DefinitionError(
                    f"{self.settings.rules_dir / (tramite.id + '.yaml')}: la máquina de estados "
                    f"{tramite.machine!r} no existe en {self.settings.state_machines_dir}"
                )
        self.validate_templates()
        mailboxes = {m.name for m in self.settings.mailboxes}
        for tramite in self.catalogue:
            if mailboxes and tramite.mailbox not in mailboxes:
                raise DefinitionError(
                    f"{self.settings.rules_dir / (tramite.id + '.yaml')}: el buzón "
                    f"{tramite.mailbox!r} no está en mailboxes de la configuración"
                )

    def validate_templates(self) -> None:
        """Every reply a machine names and every channel text renders with the variables the
        engine provides; DefinitionError `file:line: message` otherwise."""
        from mailflow.ops.template_check import check_templates

        names = {
            f"replies/{e.arg}.txt.j2"
            for m in self.machines.values()
            for t in m.transitions
            for e in t.effects
            if e.kind == "send_reply"
        }
        names |= {
            f"channel/{p.name}" for p in (self.settings.templates_dir / "channel").glob("*.txt.j2")
        }
        check_templates(self.templates, names, self.settings.institution.model_dump())
