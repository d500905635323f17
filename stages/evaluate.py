"""DVC stage `evaluate`: metrics, breakdowns, robustness, baselines and plots on the test split."""

from pathlib import Path

from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.evaluation.evaluate import EvaluateConfig, run_evaluate


def main() -> None:
    params = load_params()
    out = {"metrics": Path("metrics/evaluate.json"), "breakdowns": Path("metrics/evaluate_breakdowns.json"),
           "plots": Path("metrics/plots/evaluate"), "figures": Path("plots/evaluate"),
           "report": Path("reports/evaluate.md")}
    run_evaluate(EvaluateConfig.from_params(params.get("evaluate")), Path("models/detector.pt"),
                 Path("data/packed"), Path("data/metadata.parquet"), int(params["resize"]["size"]), out)


if __name__ == "__main__":
    run_stage(main)
