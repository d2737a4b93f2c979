"""`mailflow policy check [DIR]`: validate an edited policy, every problem as `file:line: message`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mailflow.app import App
from mailflow.config import Settings, load_settings
from mailflow.errors import MailflowError
from mailflow.policy_files import CONFIG_FILE


def policy_settings(directory: Path, base: Settings) -> Settings:
    """Settings that read the policy in `directory` (its rules/, state_machines/, templates/).

    When `directory` holds a config.yaml (as written by `mailflow init`), that file is used,
    so the mailboxes it lists are checked against the procedures; otherwise `base` with its
    policy folders pointed at `directory`.
    """
    config = directory / CONFIG_FILE
    if config.is_file():
        return load_settings(config, env={})
    return base.model_copy(
        update={
            "rules_dir": directory / "rules",
            "state_machines_dir": directory / "state_machines",
            "templates_dir": directory / "templates",
        }
    )


def check_policy(settings: Settings) -> list[str]:
    """Every problem found in the policy of `settings`; an empty list means it is valid.

    Each part (field vocabulary, procedures, lifecycles, document templates, the legal
    calendar, the links between them) is checked on its own, so one broken file does not hide problems in the others.
    Messages are `file:line: message` as raised by the loaders (DefinitionError, ConfigError).
    """
    app = App(settings)
    checks: list[Callable[[], object]] = [
        lambda: app.vocabulary,
        lambda: app.catalogue,
        lambda: app.machines,
        lambda: app.document_templates,
        lambda: app.calendarios,  # rules/calendar.yaml and the mailboxes' offices
        app.validate,
    ]
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except MailflowError as exc:
            for line in (raw.strip() for raw in str(exc).splitlines()):
                if line and line not in problems:
                    problems.append(line)
    return problems
