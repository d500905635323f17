"""Errors that the CLI turns into a clear message and exit code 2 instead of a traceback."""

import re


class UserError(Exception):
    """A mistake the user can fix (bad params, missing credentials, bad path): shown without a traceback."""


_ADDRESS = re.compile(r" (?:object )?at 0x[0-9a-fA-F]+")


def without_addresses(text: str) -> str:
    """`text` minus Python object addresses (`<_io.BytesIO object at 0x7f…>` -> `<_io.BytesIO object>`).

    Error details are stored in stage outputs; an address differs on every run and would change `dvc.lock`.
    """
    return _ADDRESS.sub(lambda m: " object" if "object" in m.group(0) else "", text)
