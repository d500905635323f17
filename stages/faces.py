"""Stage `faces@<source>`: detect, align and crop one face per raw image (params.yaml section `faces`)."""

from __future__ import annotations

import argparse
import logging
import sys

from realfake.errors import UserError
from realfake.faces import FacesConfig, run_source
from realfake.log import setup_logging
from realfake.params import load_params

log = logging.getLogger("stages.faces")


def main(argv: list[str] | None = None) -> int:
    """Read params, run the source, map user mistakes to exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="source name (data/raw/<source>.parquet)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = FacesConfig.from_params(load_params().get("faces"))
        run_source(args.source, cfg)
    except UserError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
