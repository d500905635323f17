"""DVC stage `sample`: balanced i.i.d. selection, the leakage-free split, packed training arrays (and shards)."""

from pathlib import Path

from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.sample.sampling import SampleConfig
from realfake.sample.shards import ShardsConfig, write_stage_shards
from realfake.sample.stage import run_sample


def main() -> None:
    params = load_params()
    section = dict(params.get("sample") or {})
    shards = ShardsConfig.from_params(section.pop("shards", None))  # checked before the long work starts
    cfg = SampleConfig.from_params(section)
    size = int(params["resize"]["size"])
    run_sample(Path("data/metadata.parquet"), cfg, size, Path("data/packed"), Path("data/splits.parquet"),
               Path("metrics/sample.json"), Path("plots/sample"))
    write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), Path("data/shards"), shards,
                       cfg.seed, size, Path("reports/shards.json"))


if __name__ == "__main__":
    run_stage(main)
