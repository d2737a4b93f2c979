"""Errors users can cause, each saying what went wrong and where."""


class MailflowError(Exception):
    """Base class for errors with a message meant for a person."""


class ConfigError(MailflowError):
    """The configuration file or an environment override is wrong."""


class DefinitionError(MailflowError):
    """A definition in rules/, state_machines/ or templates/ is wrong."""
