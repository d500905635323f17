"""Stage `resize@<source>`: training-size copies of the aligned crops (params.yaml section `resize`)."""

from __future__ import annotations

import argparse
import logging
import sys

from realfake.errors import UserError
from realfake.log import setup_logging
from realfake.params import load_params
from realfake.resize import ResizeConfig, run_resize

log = logging.getLogger("stages.resize")


def main(argv: list[str] | None = None) -> int:
    """Read params, run the source, map user mistakes to exit code 2."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="source name (data/faces/<source>.parquet)")
    # dvc.yaml passes ${resize.size} here on purpose: DVC's run-cache key drops every key named `size`
    # (dvc/stage/cache.py excludes "size"/"nfiles"), so a params-only dependency would restore the output
    # of another size. Putting the value in the command makes it part of the key.
    parser.add_argument("--size", type=int, help="override resize.size (dvc.yaml passes it)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        section = dict(load_params().get("resize") or {})
        if args.size is not None:
            section["size"] = args.size
        run_resize(args.source, ResizeConfig.from_params(section))
    except UserError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
