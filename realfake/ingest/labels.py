"""Parsers for the labels each source ships (file names, sidecar files, folders) and split-group keys."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import PurePosixPath

import pandas as pd

from realfake.core.vocab import ETHNICITY_TO_RACE, GENDERS, RACE_GROUPS
from realfake.ingest.prompt_labels import prompt_labels

LABEL_COLUMNS = ("age_source", "age_min_source", "age_max_source", "gender_source", "race_source",
                 "ethnicity_source", "label_note", "file_label", "dfdc_original")
INT_COLUMNS = ("age_source", "age_min_source", "age_max_source")
FOLDER_GENDERS = {"man": "male", "men": "male", "male": "male", "woman": "female", "women": "female",
                  "female": "female"}
_UTK_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_\d+")
# Unsplash names a download `<photographer>-<photo id>-unsplash.jpg`; photo ids are 11 characters of [A-Za-z0-9_-]
_UNSPLASH_NAME = re.compile(r"^(.+)-[A-Za-z0-9_-]{11}-unsplash\.[a-z]+$", re.IGNORECASE)
# Other folder words for the ethnicities of core.vocab (the Unsplash/MEBeauty layout)
ETHNICITY_ALIASES = {"caucasian": "white", "hispanic": "latino", "mideastern": "middle-eastern"}

Row = dict[str, object]
Parser = Callable[[list[str], dict[str, bytes]], list[Row]]


def parse_labels(parser: str | None, paths: list[str], sidecars: dict[str, bytes]) -> pd.DataFrame:
    """Labels for each path (one row per path, columns LABEL_COLUMNS); malformed labels give null plus a note."""
    rows = PARSERS[parser](paths, sidecars) if parser else [{} for _ in paths]
    frame = pd.DataFrame([{col: row.get(col) for col in LABEL_COLUMNS} for row in rows], columns=LABEL_COLUMNS)
    for col in LABEL_COLUMNS:
        frame[col] = frame[col].astype("Int16" if col in INT_COLUMNS else "string")
    return frame


def utkface_filename(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """UTKFace `<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`: gender 0 male / 1 female, race 0..4."""
    return [_utk_row(PurePosixPath(p).name) for p in paths]


def _utk_row(name: str) -> Row:
    match = _UTK_NAME.match(name)
    if not match:
        return {"label_note": f"utkface: malformed name {name!r} (expected age_gender_race_datetime)"}
    age, gender, race = (int(g) for g in match.groups())
    if not (0 <= age <= 120 and gender in (0, 1) and 0 <= race < len(RACE_GROUPS)):
        return {"label_note": f"utkface: out-of-range fields in {name!r}"}
    return {"age_source": age, "gender_source": GENDERS[gender], "race_source": RACE_GROUPS[race]}


def ffhq_features_json(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """FFHQ-features JSON (`…/features/<id>.json`, a list of detected faces) matched to `…/<id>.jpg`."""
    by_id = {PurePosixPath(name).stem: data for name, data in sidecars.items() if name.endswith(".json")}
    return [_ffhq_row(PurePosixPath(p).stem, by_id) for p in paths]


def _ffhq_row(image_id: str, by_id: dict[str, bytes]) -> Row:
    if image_id not in by_id:
        return {"label_note": f"ffhq-features: no features file for {image_id}"}
    try:
        faces = json.loads(by_id[image_id])
        attrs = faces[0]["faceAttributes"] if faces else None
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return {"label_note": f"ffhq-features: unreadable JSON for {image_id} ({exc.__class__.__name__})"}
    if attrs is None:
        return {"label_note": f"ffhq-features: no face in features JSON for {image_id}"}
    gender = attrs.get("gender")
    age = attrs.get("age")
    row: Row = {"gender_source": gender if gender in GENDERS else None,
                "age_source": int(round(age)) if isinstance(age, (int, float)) else None}
    if row["gender_source"] is None or row["age_source"] is None:
        row["label_note"] = f"ffhq-features: gender/age missing for {image_id}"
    return row


def lfw_gender_lists(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """LFW `male_names.txt` / `female_names.txt`: one image file name per line."""
    lists = {g: _lines(sidecars, f"{g}_names.txt") for g in GENDERS}
    rows = []
    for p in paths:
        name = PurePosixPath(p).name
        hits = [g for g in GENDERS if name in lists[g]]
        if len(hits) == 1:
            rows.append({"gender_source": hits[0]})
        elif hits:
            rows.append({"label_note": f"lfw: {name} is in both gender lists"})
        else:
            rows.append({"label_note": f"lfw: {name} is in neither gender list"})
    return rows


def _lines(sidecars: dict[str, bytes], basename: str) -> set[str]:
    """The stripped, non-empty lines of the sidecar file called `basename` (anywhere in the archive)."""
    for name, data in sidecars.items():
        if PurePosixPath(name).name == basename:
            return {line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()}
    return set()


def folder_names(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """`…/<gender>/<ethnicity>/<file>` folders (the generated-faces and Unsplash layouts)."""
    rows = []
    for p in paths:
        parts = [s.lower() for s in PurePosixPath(p).parts[:-1]]
        gender = parts[-2] if len(parts) >= 2 else None
        ethnicity = ETHNICITY_ALIASES.get(parts[-1], parts[-1]) if parts else None
        if gender in GENDERS and ethnicity in ETHNICITY_TO_RACE:
            rows.append({"gender_source": gender, "ethnicity_source": ethnicity})
        else:
            rows.append({"label_note": f"folder-names: unexpected folders {'/'.join(parts)!r}"})
    return rows


def folder_gender(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """`…/<man|woman>/<file>` folders (the Pixabay layout; male/female, men/women are read too)."""
    rows = []
    for p in paths:
        folder = PurePosixPath(p).parent.name.lower()
        gender = FOLDER_GENDERS.get(folder)
        rows.append({"gender_source": gender} if gender else
                    {"label_note": f"folder-gender: folder {folder!r} names no gender"})
    return rows


def pollinations_prompt(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """`<n>_<timestamp>_<prompt>.jpg`: age group, gender and ethnicity named by the (truncated) prompt."""
    return [prompt_labels(PurePosixPath(p).stem) for p in paths]


def dfdc_metadata(paths: list[str], sidecars: dict[str, bytes]) -> list[Row]:
    """DFDC `metadata.csv` (videoname,…,label REAL/FAKE,original) matched to `<video>.jpg` crops."""
    table = {}
    for name, data in sidecars.items():
        if PurePosixPath(name).name == "metadata.csv":
            for rec in csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))):
                table[PurePosixPath(rec.get("videoname") or "").stem] = rec
    rows = []
    for p in paths:
        video = PurePosixPath(p).stem
        rec = table.get(video)
        label = (rec or {}).get("label", "").strip().upper()
        if label not in ("REAL", "FAKE"):
            rows.append({"label_note": f"dfdc: no metadata row with a REAL/FAKE label for {video}"})
            continue
        original = PurePosixPath((rec.get("original") or "").strip()).stem or None
        rows.append({"file_label": label.lower(), "dfdc_original": original if label == "FAKE" else video})
    return rows


PARSERS: dict[str, Parser] = {
    "utkface-filename": utkface_filename,
    "ffhq-features-json": ffhq_features_json,
    "lfw-gender-lists": lfw_gender_lists,
    "folder-names": folder_names,
    "dfdc-metadata": dfdc_metadata,
    "folder-gender": folder_gender,
    "pollinations-prompt": pollinations_prompt,
}


def group_key(rule: str, source: str, path: str, dfdc_original: str | None) -> str:
    """The split-group key of one file: files sharing a key must land in the same split."""
    p = PurePosixPath(path)
    if rule == "lfw-person" and len(p.parts) > 1:
        return f"lfw:{p.parent.name}"
    if rule == "dfdc-original" and dfdc_original:
        return f"dfdc:{dfdc_original}"
    if rule == "ffhq-id" and p.stem.isdigit():
        return f"ffhq:{int(p.stem)}"
    if rule == "unsplash-photographer" and (match := _UNSPLASH_NAME.match(p.name)):
        return f"unsplash:{match.group(1).lower()}"
    return f"{source}:{path}"
