"""DVC stage `sample`: balanced i.i.d. selection, the leakage-free split, and packed training arrays."""

from pathlib import Path

from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.core.training_image import image_size
from realfake.sample.sampling import SampleConfig
from realfake.sample.stage import run_sample


def main() -> None:
    params = load_params()
    run_sample(Path("data/metadata.parquet"), load_section(SampleConfig, params, "sample"),
               image_size(params), Path("data/packed"), Path("data/splits.parquet"),
               Path("metrics/sample.json"), Path("plots/sample/distributions.csv"))


if __name__ == "__main__":
    run_stage(main)
