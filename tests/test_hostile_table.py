"""docs/hostile-inputs.md stays true: every reason it names exists in the code, every download reason is listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from realfake.ingest.extract import SKIP_REASONS

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "docs" / "hostile-inputs.md"


def table_rows() -> list[dict[str, str]]:
    """Every row of every `input | outcome | reason` table in the document."""
    rows, columns = [], None
    for line in TABLE.read_text().splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if columns is None:
            columns = cells
            assert columns == ["input", "outcome", "reason"], f"table header must be input | outcome | reason: {line}"
        elif not set("".join(cells)) <= set("-: "):
            assert len(cells) == 3, f"a row needs three cells: {line}"
            rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def reasons_of(row: dict[str, str]) -> list[str]:
    return re.findall(r"`([^`]+)`", row["reason"])


def code_strings() -> set[str]:
    """Every string constant in the package and the stage scripts, f-string pieces included."""
    found = set()
    for path in [*(REPO / "realfake").rglob("*.py"), *(REPO / "stages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_row_names_a_reason_the_code_has():
    rows = table_rows()
    assert len(rows) > 50
    strings = code_strings()
    missing = []
    for row in rows:
        reasons = reasons_of(row)
        assert reasons, f"row without a reason in backticks: {row}"
        missing += [(row["input"], r) for r in reasons if not any(r in s for s in strings)]
    assert not missing, f"reasons the code does not have (renamed? update docs/hostile-inputs.md): {missing}"


def test_every_download_reason_is_in_the_table():
    listed = {r for row in table_rows() for r in reasons_of(row)}
    assert set(SKIP_REASONS) <= listed, f"add rows for {sorted(set(SKIP_REASONS) - listed)}"


def test_a_renamed_reason_would_be_caught():
    """The check itself can fail: a reason the code does not have is not found."""
    strings = code_strings()
    assert not any("duplicate-entry-name" in s for s in strings)
    assert any(s == "duplicate-name" for s in strings)
