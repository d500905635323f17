"""Within-source pairs from scores.parquet: dfdc-real vs dfdc-faceswap, ciplab-real (held out) vs ciplab-photoshop."""
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

for run in sys.argv[1:]:
    s = pd.read_parquet(Path(run) / "reports/scores.parquet")
    t = s[s.split == "test"]
    d = t[t.source.isin(["dfdc-real", "dfdc-faceswap"])]
    c = pd.concat([s[(s.split == "holdout") & (s.source == "ciplab-real")], t[t.source == "ciplab-photoshop"]])
    print(f"{Path(run).name}: dfdc pair AUC {roc_auc_score(d.y, d.p_fake):.3f} (n {len(d)}); "
          f"ciplab pair AUC {roc_auc_score(c.y, c.p_fake):.3f} (n {len(c)})")
