"""Age range, gender and ethnicity named by a generation prompt in a file name (the pollinations layout).

The prompts follow one template, "A close-up shot of a <age> <gender> person of <ethnicity> …", cut to 50
characters in the file name, so the last word is often truncated: a truncated word is read when it is the
prefix of exactly one known term ("Pacifi" → Pacific Islander) and left empty when ambiguous ("Mi": Middle
Eastern or Mixed race). Values outside the project's vocabularies (non-binary, genderqueer) are left empty too.
"""

from __future__ import annotations

import re

# Age words as year ranges (inclusive). The metadata stage turns a range into an age group only when it lies
# inside one age bin: "young adult" and "middle-aged" span several bins and stay empty (the attribute model fills
# them in and says so). The template has no word between "young adult" and "middle-aged", hence 20-39.
AGE_TERMS: dict[str, tuple[int, int]] = {
    "child": (0, 12), "teenager": (13, 19), "young adult": (20, 39), "middle-aged": (40, 64), "elderly": (65, 119),
}
# Gender words onto the male/female vocabulary; None: named, but outside the vocabulary (left empty).
GENDER_TERMS: dict[str, str | None] = {
    "male": "male", "man": "male", "female": "female", "woman": "female", "non-binary": None, "genderqueer": None,
}
# Ethnicity words onto the generated-faces vocabulary (labels.FOLDER_ETHNICITIES), which the metadata stage maps
# onto UTKFace's five race groups; UTKFace's "others" covers everyone outside white/black/asian/indian.
# Native American is not UTKFace's "indian" (South Asian).
ETHNICITY_TERMS: dict[str, str] = {
    "african": "black", "asian": "asian", "caucasian": "white", "hispanic": "latino", "latino": "latino",
    "middle eastern": "middle-eastern", "mixed race": "others", "native american": "others",
    "pacific islander": "others",
}
_NAME = re.compile(r"^\d+_\d+_(?P<prompt>.+)$")
_SUBJECT = re.compile(r"\bof an? (?P<rest>.*)$")


def prompt_labels(stem: str) -> dict[str, object]:
    """Label columns (age_min/max_source, gender_source, ethnicity_source or label_note) of one file name stem."""
    match = _NAME.match(stem)
    text = match.group("prompt").replace("_", " ").lower().strip() if match else ""
    subject = _SUBJECT.search(text)
    if not subject:
        return {"label_note": f"pollinations: no prompt naming a person in {stem!r}"}
    row: dict[str, object] = {}
    age, rest = _take(subject.group("rest"), AGE_TERMS)
    if age is not None:
        row["age_min_source"], row["age_max_source"] = AGE_TERMS[age]
        gender, rest = _take(rest, GENDER_TERMS)
        if gender is not None:
            row["gender_source"] = GENDER_TERMS[gender]
            of = re.match(r"^(?:person|people|man|woman)? ?of (?P<eth>.*)$", rest)
            ethnicity = _take(of.group("eth"), ETHNICITY_TERMS)[0] if of else None
            if ethnicity is not None:
                row["ethnicity_source"] = ETHNICITY_TERMS[ethnicity]
    if not row:
        row["label_note"] = f"pollinations: prompt names no known age group in {stem!r}"
    return row


def _take(text: str, terms: dict) -> tuple[str | None, str]:
    """The term `text` starts with and what follows it; a truncated last word counts if only one term fits it."""
    for term in sorted(terms, key=len, reverse=True):
        if text == term or text.startswith(term + " "):
            return term, text[len(term):].lstrip()
    fits = [t for t in terms if text and t.startswith(text)]
    return (fits[0], "") if len(fits) == 1 else (None, text)
