"""DVC stage `download@<source>`: fetch one source and describe its images."""

import argparse
from pathlib import Path

from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.sources import load_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    params = load_params()
    source = load_source(params, args.source)
    cfg = DownloadConfig.from_params(params.get("download"))
    run_download(source, cfg, Path("data/raw"), Path(f"metrics/download/{args.source}.json"))


if __name__ == "__main__":
    run_stage(main)
