"""Logging setup shared by the CLI and the stage scripts."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    """Log to stderr with timestamps; level from the argument or REALFAKE_LOG (default INFO)."""
    level = (level or os.environ.get("REALFAKE_LOG", "INFO")).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
