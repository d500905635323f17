"""Stage sample: balanced selection, leakage-free splits, packed arrays; export-mini."""
