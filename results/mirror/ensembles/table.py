"""Ensembles over 3 ensemble seeds on the mirror: table.md (mean ± std over seeds) and summary.json, from the run folders.

Usage: python results/mirror/ensembles/table.py [FOLDER] (default: this one). A run folder is <arm>-s<seed>
holding metrics/, reports/ (with scores.parquet), params.yaml and wall.json; every row has the figures of ../verdict/table.py (issue 22) and of
../generalize/table.py (issue 23). ../leaveouts/table.py calls `write` on its own folder; ../npr is written with
`python results/mirror/ensembles/table.py results/mirror/npr`.
"""
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent


def module(path: Path):
    """A sibling table.py as a module."""
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_table", path)
    found = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(found)
    return found


def write(here: Path) -> None:
    """table.md and summary.json of the run folders in `here`."""
    verdict, generalize = module(HERE.parent / "verdict/table.py"), module(HERE.parent / "generalize/table.py")
    runs = {d.name: d for d in sorted(here.iterdir()) if (d / "reports/evaluate.json").exists()}
    rows = {name: {**verdict.row_of(path), **generalize.row_of(path)} for name, path in runs.items()}
    # the runs on the default setting first, then the leave-outs (lo-*), each group by name
    verdict.write_tables(here, rows, order=lambda kv: (kv[0].startswith("lo-"), kv[0]))


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
