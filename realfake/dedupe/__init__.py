"""Exact and near-duplicate faces across sources (stage `dedupe`, see docs/dedupe.md).

Modules: `hashing` (exact pixel hash, vectorised numpy pHash/dHash, bit-identical to imagehash),
`search` (multi-index hashing: all pairs within a Hamming radius without comparing all pairs),
`clusters` (vectorised union-find, keeper policy, label conflicts), `calibrate` (recall on known
duplicates, false merges on known different faces), `pipeline` (load, hash, match, cluster),
`report` (metrics, output schema, gallery), `config` (the params.yaml section).
"""

from realfake.dedupe.config import CalibrationConfig, DedupeConfig
from realfake.dedupe.pipeline import DedupeResult, run_dedupe

__all__ = ["CalibrationConfig", "DedupeConfig", "DedupeResult", "run_dedupe"]
