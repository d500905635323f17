"""Every issue-23 arm with one GAN left out, on one draw: table.md and summary.json, as ../ensembles/table.py.

Usage: python results/mirror/leaveouts/table.py
"""
import importlib.util
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("ensembles_table", HERE.parent / "ensembles/table.py")
    ensembles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ensembles)
    ensembles.write(HERE)
