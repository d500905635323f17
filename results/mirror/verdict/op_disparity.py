"""The false-alarm disparity at a run's operating point, for runs made before evaluate reported it.

Usage: python results/mirror/verdict/op_disparity.py RUN_DIR METADATA_PARQUET; writes RUN_DIR/op_disparity.json
from RUN_DIR/reports/scores.parquet (test faces) and the operating point in RUN_DIR/reports/evaluate.json, with
the function evaluate now calls (realfake.evaluation.verdicts.operating_point_disparity).
"""
import json
import sys
from pathlib import Path

import pandas as pd

from realfake.detector.verdict import OperatingPoint
from realfake.evaluation.breakdowns import BreakdownConfig, attach_metadata
from realfake.evaluation.metrics import to_jsonable
from realfake.evaluation.verdicts import operating_point_disparity

run, metadata = Path(sys.argv[1]), sys.argv[2]
op = json.loads((run / "reports/evaluate.json").read_text())["operating_point"]
point = OperatingPoint(op["temperature"], op["t_real"], op["t_fake"], op["target_fpr"], op["target_fnr"])
scores = pd.read_parquet(run / "reports/scores.parquet")
test = scores[scores["split"] == "test"][["face_id", "source", "label", "y", "p_fake"]]
joined, _ = attach_metadata(test, pd.read_parquet(metadata))
out = operating_point_disparity(point, joined, BreakdownConfig())
(run / "op_disparity.json").write_text(json.dumps(to_jsonable(out), indent=1, sort_keys=True) + "\n")
print(run.name, {a: d.get("fpr", {}).get("ratio") for a, d in out.items()})
