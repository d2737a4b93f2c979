"""Errors users can cause, each saying what went wrong and where."""


class MailflowError(Exception):
    """Base class for errors with a message meant for a person."""


class ConfigError(MailflowError):
    """The configuration file or an environment override is wrong."""


class DefinitionError(MailflowError):
    """A definition in rules/, state_machines/ or templates/ is wrong."""


class NotNow(Exception):
    """This machine cannot handle the message now — e.g. no process could be started to read
    it (out of processes or memory). Not the message's fault: it waits and is tried again
    later, without counting an attempt against it."""
