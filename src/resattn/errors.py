"""Errors that mean the user must change something: the CLI prints them as one line."""


class UserError(Exception):
    """A mistake in what the user asked for or gave (flag, file, data): say what to do."""
