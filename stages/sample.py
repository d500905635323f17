"""DVC stage `sample`: balanced i.i.d. selection, the leakage-free split, and packed training arrays."""

from pathlib import Path

from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.sample.sampling import SampleConfig
from realfake.sample.stage import run_sample


def main() -> None:
    params = load_params()
    run_sample(Path("data/metadata.parquet"), SampleConfig.from_params(params.get("sample")),
               int(params["resize"]["size"]), Path("data/packed"), Path("data/splits.parquet"),
               Path("metrics/sample.json"), Path("plots/sample/distributions.csv"))


if __name__ == "__main__":
    run_stage(main)
