"""What `realfake predict` (and `realfake serve`) hand a person: the rows' columns, reasons in plain words, the
decision rule in words, the summary line, the printed table, and the CSV / JSON files."""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.atomic import write_json, write_text
from realfake.core.errors import UserError

MISSING_REASONS = r"(not_found|no_match|no_images|not_a_file)(:|$)"

# One row per face (or per file / input that could not be scored). `reason` says in plain words why a row has no
# score; `reason_code` keeps the machine code (the faces stage's reason codes, docs/hostile-inputs.md). The decision
# threshold is the same for every row: the summary line and the printed table's header say it once.
COLUMNS = ["file", "face_index", "x1", "y1", "x2", "y2", "face_prob", "p_fake", "decision", "reason", "reason_code",
           "warning"]
OUT_SUFFIXES = (".csv", ".json")
DECIMALS = 4  # p_fake and face_prob; box corners get 1

# Plain words for every reason code a row can carry; `detail` parsers below add the numbers where they help.
PLAIN_REASONS = {
    "not_found": "no such file or folder",
    "no_match": "the pattern matches no file",
    "no_images": "the folder holds no image files",
    "not_a_file": "not a regular file (a FIFO, device or socket): not read",
    "empty_file": "the file is empty",
    "unreadable": "the file cannot be read",
    "not_an_image": "not an image file",
    "truncated": "the image file is cut short",
    "decode_error": "the image cannot be decoded",
    "too_many_pixels": "the image has too many pixels to open safely",
    "too_small": "the image is too small to look for a face in",
    "image_too_small": "the image is too small to hold a face the model can judge",
    "detection_error": "the face detector failed on this image",
    "no_face": "no face found",
    "face_too_small": "the face is too small: the model never saw faces this small",
    "pad": "the face is too close to the photo's edge: its crop would be too much filled-in border",
    "upscale": "the face is too small in the photo: its crop would have to be enlarged",
    "native_too_small": "the photo is smaller than the window the model reads",
    "watermark": "the face's crop would read a watermark",
    "crop_error": "the face could not be cut out",
}


def plain_reason(error: str) -> tuple[str, str]:
    """(`reason_code`, plain words) of an internal `code: detail` error string."""
    code, _, detail = error.partition(":")
    code, detail = code.strip(), detail.strip()
    words = PLAIN_REASONS.get(code, code.replace("_", " "))
    numbers = None
    if code == "pad" and (m := re.match(r"pad_fraction ([\d.]+) > ([\d.]+)", detail)):
        numbers = f"{100 * float(m.group(1)):.1f}% border, at most {100 * float(m.group(2)):g}%"
    elif code == "face_too_small" and (m := re.match(r"([\d.]+) px < \S+=(\d+)", detail)):
        numbers = f"{m.group(1)} px, at least {m.group(2)} px"
    elif code in ("image_too_small", "too_small", "too_many_pixels", "native_too_small") and (
            m := re.search(r"(\d+)x(\d+)", detail)):
        numbers = f"{m.group(1)}x{m.group(2)} px"
    return code, f"{words} ({numbers})" if numbers else words


def csv_text(table: pd.DataFrame) -> str:
    """The CSV `--out results.csv` writes; `serve`'s download is this text too."""
    return table.to_csv(index=False)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts (missing values as None): `--out results.json` and `serve`'s /api/predict."""
    return table.replace({np.nan: None}).to_dict(orient="records")


def check_out(out: Path) -> None:
    """Refuse an output path before any work is done: a known extension and a writable folder."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out must end in .csv or .json, got {out}")
    if out.is_dir():
        raise UserError(f"--out {out} is a directory: name a .csv or .json file")
    folder = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"--out {out}: cannot write in {folder}")
    try:  # permissions are not the whole story (/proc, a read-only mount, root): try it, as the write will
        if folder == out.parent:
            fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
            os.close(fd)
            os.unlink(probe)
        else:  # the write will create the missing folders under `folder`
            os.rmdir(tempfile.mkdtemp(prefix=".realfake-out.", suffix=".probe", dir=folder))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write in {folder} ({exc.strerror or type(exc).__name__})") from None


def write_results(table: pd.DataFrame, out: Path) -> None:
    """CSV or JSON by the file's extension."""
    if out.suffix.lower() == ".json":
        write_json(out, records(table))
    elif out.suffix.lower() == ".csv":
        write_text(out, csv_text(table))
    else:
        raise UserError(f"--out must end in .csv or .json, got {out}")


def rule_words(point: dict[str, Any] | None, short: bool = False) -> str:
    """The decision rule in words: the operating point's two thresholds, or the one threshold."""
    if not point:
        return ""
    t_real, t_fake = point["t_real"], point["t_fake"]
    if short:
        return (f"at threshold {t_fake:.{DECIMALS}f}" if t_real == t_fake else
                f"at the operating point (real < {t_real:.{DECIMALS}f} <= uncertain < {t_fake:.{DECIMALS}f} <= fake)")
    target = point.get("target_fpr")
    why = (f" (the operating point: {target:.0%} of validation reals called fake)"
           if isinstance(target, float) and math.isfinite(target) else "")
    if t_real == t_fake:
        return f"threshold {t_fake:.{DECIMALS}f}{why}: a face with p_fake at or above it is called fake"
    return (f"fake from p_fake {t_fake:.{DECIMALS}f}{why}, real below {t_real:.{DECIMALS}f}, uncertain between")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(table: pd.DataFrame, seconds: float) -> str:
    """One line for the terminal: files, faces scored and their verdicts at the threshold, and what was not scored."""
    missing = table["reason_code"].fillna("").str.match(MISSING_REASONS)
    scored = table["p_fake"].notna()
    files = table.loc[~missing, "file"]
    unscored_files = files.nunique() - table.loc[scored, "file"].nunique()
    unscored_faces = int((table["face_index"].notna() & ~scored).sum())
    found = int(scored.sum()) + unscored_faces
    line = (f"{plural(files.nunique(), 'file')}, {plural(int(scored.sum()), 'face')} scored in {seconds:.1f}s"
            + f" {rule_words(table.attrs.get('operating_point'), short=True)}"
            + f": {int((table['decision'] == 'fake').sum())} fake, {int((table['decision'] == 'uncertain').sum())} "
              f"uncertain, {int((table['decision'] == 'real').sum())} real")
    if found:
        line += f"; coverage {int(scored.sum())}/{found} detected faces"
    if unscored_faces:
        line += f"; {plural(unscored_faces, 'face')} not scored"
    if unscored_files:
        line += f"; {plural(unscored_files, 'file')} with no face scored"
    if missing.any():
        line += f"; {plural(int(missing.sum()), 'input')} named nothing"
    return line


def short_warning(warning: str) -> str:
    """The `warning` cell of the printed table: its gist (the whole line is printed once above the table)."""
    return warning.partition(":")[0]


def printed_table(table: pd.DataFrame) -> str:
    """The results as a terminal table: names left-aligned, numbers right-aligned, blanks where a row has no value."""
    def cell(value: Any, fmt: str = "{}") -> str:
        return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else fmt.format(value)

    header = ["file", "face", "box", "face_prob", "p_fake", "decision", "reason", "warning"]
    numeric = {"face", "face_prob", "p_fake"}
    body = []
    for row in table.itertuples(index=False):
        box = "" if pd.isna(row.x1) else f"{row.x1:.0f},{row.y1:.0f},{row.x2:.0f},{row.y2:.0f}"
        body.append([cell(row.file), cell(row.face_index), box, cell(row.face_prob, f"{{:.{DECIMALS}f}}"),
                     cell(row.p_fake, f"{{:.{DECIMALS}f}}"), cell(row.decision), cell(row.reason),
                     short_warning(row.warning) if isinstance(row.warning, str) else ""])
    keep = [k for k, name in enumerate(header) if name != "warning" or any(r[k] for r in body)]
    widths = {k: max([len(header[k])] + [len(r[k]) for r in body]) for k in keep}

    def line(cells: list[str]) -> str:
        return "  ".join(cells[k].rjust(widths[k]) if header[k] in numeric else cells[k].ljust(widths[k])
                         for k in keep).rstrip()

    return "\n".join([line(header)] + [line(r) for r in body])


def missing_line(missing: list[str], n_inputs: int, outcome: str) -> str:
    """The one line that makes `realfake predict` exit 2 when an input names no file."""
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    return f"{len(missing)} of {n_inputs} inputs named no image file: {shown}; {outcome}"
