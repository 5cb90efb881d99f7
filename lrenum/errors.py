"""Exceptions that the command line turns into one-line messages (exit code 2)."""


class InputError(ValueError):
    """Bad user input: a malformed network, domain or file. The message is shown as is."""
