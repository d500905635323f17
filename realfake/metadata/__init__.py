"""Stage metadata: data/metadata.parquet (one row per surviving face) and the dataset card."""
