"""DVC stage `sample`: balanced i.i.d. selection, the leakage-free split, packed training arrays (and shards)."""

from pathlib import Path

from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.core.training_image import image_size
from realfake.crops.views import view_record
from realfake.sample.config import SampleConfig
from realfake.sample.shards import write_stage_shards
from realfake.sample.stage import run_sample


def main() -> None:
    params = load_params()
    cfg, size = load_section(SampleConfig, params, "sample"), image_size(params)  # checked before the long work
    view = view_record(cfg.view, params)
    run_sample(Path("data/metadata.parquet"), cfg, size, Path("data/packed"), Path("data/splits.parquet"),
               Path("metrics/sample.json"), Path("plots/sample"), view=view)
    write_stage_shards(Path("data/metadata.parquet"), Path("data/splits.parquet"), Path("data/shards"), cfg.shards,
                       cfg.seed, size, Path("reports/shards.json"), view=view, require=tuple(cfg.require_views))


if __name__ == "__main__":
    run_stage(main)
