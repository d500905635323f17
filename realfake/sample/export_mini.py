"""`realfake export-mini`: a balanced, stratified mini-dataset (crops + metadata + card) in one ZIP."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path

import pandas as pd
import yaml

from realfake.core.atomic import atomic_path
from realfake.core.errors import UserError
from realfake.core.tables import markdown_table
from realfake.sample.config import SampleConfig
from realfake.sample.sampling import balanced_sample, tv_distance

log = logging.getLogger(__name__)

CARD = """# realfake mini-dataset

{n} face crops: {n_real} real and {n_fake} generated, balanced per stratum ({strata}), drawn uniformly at random
within each stratum (seed {seed}) from the realfake pipeline's deduplicated, aligned faces.
Drawn from the `{profile}` data profile ({profile_note}).

- `images/<label>/<source>/<face_id>.png`: aligned face crops, every source with the same framing, size and
  lossless PNG encoding (MTCNN landmarks, similarity transform).
- `metadata.parquet`: one row per image (`file` is its path in this archive), with source, label, kind of fake,
  split group and the demographic, pose and quality columns of the pipeline: every column is described in
  `DATA_DICTIONARY.md`, beside this card.

Real/fake distance over strata (total variation): {tv:.3f}. Real and fake have the same number of faces in every
stratum, so age, gender or race cannot tell the classes apart.

## Counts

{counts}

Sources keep their own licences: `LICENCES.md`, beside this card, names each source and its terms. Research and
teaching use only.
"""

PROFILE_NOTES = {
    "sample": "the embedded sample shipped with realfake, a few dozen images per source",
    "mirror": "the offline mirror of the public source datasets",
    "kaggle": "the public Kaggle datasets",
}
LICENCE_SOURCE = Path(__file__).resolve().parents[2] / "data" / "sample" / "README.md"  # its licence section
LICENCE_HEADING = "## Attribution and licences"


DICTIONARY_SOURCE = Path(__file__).resolve().parents[2] / "docs" / "metadata.md"  # the repository's docs/
# pipeline paths (data/raw/..., data/faces/...) point into the producer's checkout, not into the archive
PIPELINE_PATHS = ("raw_path", "crop_path", "resized_path", "path")


def column_meanings(markdown: str) -> dict[str, tuple[str, str]]:
    """(dtype, meaning) per column from the rows of the data dictionary's tables (| `a`, `b` | dtype | meaning |)."""
    out: dict[str, tuple[str, str]] = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                out.setdefault(name, (cells[1], cells[2]))
    return out


def own_meaning(column: str, known: dict[str, tuple[str, str]]) -> str | None:
    """The meaning of a column the docs describe only together with its neighbour (`gender_pred`, `gender_conf` in
    one row; `gender`, `gender_from` in another) or not at all (the sample's quality bands)."""
    if column.endswith("_pred"):
        base = column.removesuffix("_pred")
        return f"the attribute model's answer for `{base}` (argmax class); its probability is `{base}_conf`"
    if column.endswith("_conf"):
        base = column.removesuffix("_conf")
        return (f"the attribute model's probability of its answer `{base}_pred` (softmax of the argmax class, mean over "
                "the crop and its mirror), 0–1")
    if column.endswith("_from") and column.removesuffix("_from") in known:
        base = column.removesuffix("_from")
        return (f"where `{base}` comes from: `source` (the source's own label) or `model` (the attribute model's "
                f"`{base}_pred`); null when neither exists")
    if column.endswith("_band"):
        measure = column.removesuffix("_band")
        return (f"quality band of `{measure}` used by the sample stage (params.yaml `sample.quality_bins.{measure}`): "
                f"`{measure}<a` below the first edge, `{measure} a-b` between two edges, `{measure}>=b` above the last; "
                "null where the measure is unknown")
    return None


def data_dictionary(mini: pd.DataFrame, source: Path = DICTIONARY_SOURCE) -> str:
    """DATA_DICTIONARY.md for the archive: every column of its metadata.parquet, with the pipeline's description."""
    known = column_meanings(source.read_text()) if source.is_file() else {}
    known["file"] = ("string", "path of the image in this archive: `images/<label>/<source>/<face_id>.png`")
    known.setdefault("stratum", ("string", "the sampling stratum (the values of the strata columns, joined)"))
    rows = [{"column": f"`{c}`", "dtype": str(mini[c].dtype),
             "meaning": own_meaning(c, known) or known.get(c, ("", "(not described in the realfake data dictionary)"))[1]}
            for c in mini.columns]
    return ("# Data dictionary: metadata.parquet\n\nOne row per image in this archive. Types are pandas dtypes "
            "(`pandas.read_parquet` gives them back). Descriptions come from realfake's `docs/metadata.md`.\n\n"
            + markdown_table(pd.DataFrame(rows)) + "\n")


def licences(source: Path = LICENCE_SOURCE) -> str:
    """LICENCES.md for the archive: the attribution and licence of every source (realfake's data/sample/README.md)."""
    text = source.read_text() if source.is_file() else ""
    if LICENCE_HEADING not in text:
        raise UserError(f"{source} has no '{LICENCE_HEADING}' section: cannot say under which terms the images ship")
    section = text.split(LICENCE_HEADING, 1)[1].split("\n## ", 1)[0]
    return "# Attribution and licences of the images in this archive\n" + section.rstrip() + "\n"


def data_profile(root: Path) -> str:
    """data.profile of the checkout the metadata came from (params.yaml), 'unknown' when it cannot be read."""
    try:
        value = ((yaml.safe_load((root / "params.yaml").read_text()) or {}).get("data") or {}).get("profile")
    except (OSError, yaml.YAMLError, AttributeError):
        return "unknown"
    return value if isinstance(value, str) else "unknown"


def select_mini(metadata: pd.DataFrame, per_class: int, strata: tuple[str, ...], seed: int) -> pd.DataFrame:
    """Balanced per stratum, scaled down to `per_class` faces of each label."""
    cfg = SampleConfig(strata=strata, min_per_stratum=1, max_per_class=per_class, seed=seed)
    selected = balanced_sample(metadata, cfg).selected
    counts = selected["label"].value_counts()
    if counts.get("real", 0) != counts.get("fake", 0) or len(selected) == 0:
        raise UserError(f"could not draw a balanced mini-dataset: {counts.to_dict()}")
    if counts["real"] < per_class:
        log.warning("only %d faces per class fill the strata evenly (asked for %d)", counts["real"], per_class)
    return selected


def export_mini(metadata_path: Path, out: Path, per_class: int, strata: tuple[str, ...], seed: int,
                root: Path = Path(".")) -> pd.DataFrame:
    """Write the mini-dataset ZIP and return its metadata table."""
    if not metadata_path.exists():
        raise UserError(f"{metadata_path} not found: run `dvc repro` first")
    metadata = pd.read_parquet(metadata_path)
    mini = select_mini(metadata, per_class, strata, seed)
    mini = mini.assign(file=[f"images/{r.label}/{r.source}/{r.face_id}.png" for r in mini.itertuples()])
    crops = list(mini["crop_path"])
    mini = mini.drop(columns=[c for c in PIPELINE_PATHS if c in mini]).reset_index(drop=True)
    counts = mini.groupby(["source", "label"], observed=True).size().rename("faces").reset_index()
    profile = data_profile(root)
    card = CARD.format(profile=profile, profile_note=PROFILE_NOTES.get(profile, "params.yaml `data.profile`"),
                       n=len(mini), n_real=int((mini["label"] == "real").sum()),
                       n_fake=int((mini["label"] == "fake").sum()), strata=" × ".join(strata), seed=seed,
                       tv=tv_distance(mini, mini["stratum"]), counts=markdown_table(counts))
    licence_text = licences()  # refused before anything is written
    buf = io.BytesIO()
    mini.to_parquet(buf, index=False)
    with atomic_path(out, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for crop, name in zip(crops, mini["file"], strict=True):
            zf.write(root / crop, name)
        zf.writestr("metadata.parquet", buf.getvalue())
        zf.writestr("README.md", card)
        zf.writestr("DATA_DICTIONARY.md", data_dictionary(mini))
        zf.writestr("LICENCES.md", licence_text)
    return mini

