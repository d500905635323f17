"""Run a stage script or command: user mistakes print one clear line and exit 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from realfake.core.errors import UserError
from realfake.core.log import setup_logging

log = logging.getLogger("realfake")  # the name the CLI has always logged under


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage or command: user mistakes print one clear line and exit 2, not a traceback."""
    setup_logging()
    try:
        main()
    except UserError as exc:
        log.error("%s", exc)
        sys.exit(2)
    except KeyboardInterrupt:
        log.error("interrupted; outputs are written atomically, so re-running is safe")
        sys.exit(130)
