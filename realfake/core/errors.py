"""Errors that the CLI turns into a clear message and exit code 2 instead of a traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad params, missing credentials, bad path): shown without a traceback."""
