"""DVC stage `evaluate`: metrics, breakdowns, robustness, baselines and plots on the test split."""

from pathlib import Path

from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.core.training_image import image_size
from realfake.detector.packed import packed_image_size
from realfake.evaluation.evaluate import EvaluateConfig, run_evaluate


def main() -> None:
    params = load_params()
    out = {"metrics": Path("metrics/evaluate.json"), "details": Path("reports/evaluate.json"),
           "breakdowns": Path("reports/evaluate_breakdowns.json"), "plots": Path("plots/evaluate"),
           "report": Path("reports/evaluate.md"), "scores": Path("reports/scores.parquet")}
    run_evaluate(load_section(EvaluateConfig, params, "evaluate"), Path("models/detector.pt"),
                 Path("data/packed"), Path("data/metadata.parquet"),
                 packed_image_size(Path("data/packed"), image_size(params)), out,  # the packed view's size
                 Path("data/splits.parquet"))


if __name__ == "__main__":
    run_stage(main)
