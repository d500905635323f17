"""Each label parser on real files from the embedded sample."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from realfake.ingest.labels import group_key, parse_labels

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def read_archive(name: str) -> tuple[list[str], dict[str, bytes]]:
    """Image paths and every other member's bytes from one sample archive."""
    with zipfile.ZipFile(SAMPLE / name) as zf:
        names = zf.namelist()
        images = sorted(n for n in names if n.endswith(".jpg"))
        return images, {n: zf.read(n) for n in names if not n.endswith(".jpg")}


def test_utkface_filename_with_the_two_malformed_names():
    paths, side = read_archive("utkface.zip")
    frame = parse_labels("utkface-filename", paths, side).assign(path=paths)
    malformed = frame[frame["path"].str.contains("61_1_20170109142408075|61_3_20170109150557335")]
    assert len(malformed) == 2
    assert malformed[["age_source", "gender_source", "race_source"]].isna().all().all()
    assert malformed["label_note"].str.contains("malformed").all()
    good = frame.drop(malformed.index)
    assert good["label_note"].isna().all()
    for row in good.itertuples():
        age, gender, race = Path(row.path).name.split("_")[:3]
        assert row.age_source == int(age)
        assert row.gender_source == ("male", "female")[int(gender)]
        assert row.race_source == ("white", "black", "asian", "indian", "others")[int(race)]


def test_ffhq_features_json_gender_age_and_empty_files():
    paths, side = read_archive("ffhq.zip")
    frame = parse_labels("ffhq-features-json", paths, side)
    empty = [p for p in paths if side[p.replace("images", "features").replace(".jpg", ".json")].strip() == b"[]"]
    assert empty, "the sample keeps at least one features file without a face"
    notes = frame["label_note"].dropna()
    assert len(notes) == len(empty) and notes.str.contains("no face").all()
    labelled = frame.dropna(subset=["gender_source"])
    assert set(labelled["gender_source"]) <= {"male", "female"} and labelled["age_source"].between(0, 100).all()


def test_lfw_gender_lists():
    paths, side = read_archive("lfw.zip")
    frame = parse_labels("lfw-gender-lists", paths, side)
    males = set(side["male_names.txt"].decode().split())
    for path, gender, note in zip(paths, frame["gender_source"], frame["label_note"], strict=True):
        name = Path(path).name
        if pd.isna(note):
            assert gender == ("male" if name in males else "female")


def test_lfw_name_in_both_lists_is_null_with_a_note():
    frame = parse_labels("lfw-gender-lists", ["A/A_0001.jpg", "B/B_0001.jpg"],
                         {"male_names.txt": b"A_0001.jpg\n", "female_names.txt": b"A_0001.jpg\n"})
    assert frame["gender_source"].isna().all()
    assert "both" in frame["label_note"][0] and "neither" in frame["label_note"][1]


def test_folder_names_gender_and_ethnicity():
    paths, side = read_archive("generated-faces.zip")
    frame = parse_labels("folder-names", paths, side)
    assert frame["label_note"].isna().all()
    for path, gender, eth in zip(paths, frame["gender_source"], frame["ethnicity_source"], strict=True):
        assert path.split("/")[1:3] == [gender, eth]
    odd = parse_labels("folder-names", ["images/robot/x.jpg"], {})
    assert odd["gender_source"].isna().all() and odd["label_note"].notna().all()


def test_dfdc_metadata_labels_and_original_videos():
    paths, side = read_archive("dfdc-faceswap.zip")
    frame = parse_labels("dfdc-metadata", paths, side)
    assert set(frame["file_label"]) == {"real", "fake"}
    reals = set(Path(p).stem for p, lab in zip(paths, frame["file_label"], strict=True) if lab == "real")
    fakes = frame[frame["file_label"] == "fake"]
    assert set(fakes["dfdc_original"]) <= reals  # the sample keeps each fake with its source video
    keys = {group_key("dfdc-original", "x", p, o) for p, o in zip(paths, frame["dfdc_original"], strict=True)}
    assert len(keys) == len(reals)


def test_no_parser_gives_all_null_labels():
    frame = parse_labels(None, ["a.jpg"], {})
    assert frame.drop(columns=[]).isna().all().all() and frame["age_source"].dtype == "Int16"


def test_pollinations_prompt_age_gender_and_truncated_ethnicity():
    names = {  # real file names from pollinations.zip; the prompt is cut to 50 characters
        "pollinations/9_20241130135729_A_close-up_shot_of_a_elderly_female_person_of_Afri.jpg":
            (65, 119, "female", "black"),
        "pollinations/99_20241130141808_A_close-up_shot_of_a_teenager_male_person_of_Pacif.jpg":
            (13, 19, "male", "others"),
        "pollinations/102_20241130141854_A_close-up_shot_of_a_middle-aged_male_person_of_Mi.jpg":
            (40, 64, "male", None),  # Middle Eastern or Mixed race: ambiguous, left empty
        "pollinations/0_20241130135552_A_close-up_shot_of_a_middle-aged_genderqueer_perso.jpg":
            (40, 64, None, None),  # outside the male/female vocabulary
        "pollinations/103_20241130141904_A_close-up_shot_of_a_child_non-binary_person_of_Pa.jpg":
            (0, 12, None, "others"),
    }
    frame = parse_labels("pollinations-prompt", list(names), {})
    for row, (lo, hi, gender, eth) in zip(frame.itertuples(), names.values(), strict=True):
        assert (row.age_min_source, row.age_max_source) == (lo, hi)
        assert (None if pd.isna(row.gender_source) else row.gender_source) == gender
        assert (None if pd.isna(row.ethnicity_source) else row.ethnicity_source) == eth
        assert pd.isna(row.label_note) and pd.isna(row.age_source)
    odd = parse_labels("pollinations-prompt", ["pollinations/1_20241130135540_prompt.jpg"], {})
    assert odd["label_note"].str.contains("no prompt").all() and odd["age_min_source"].isna().all()


def test_folder_gender_reads_man_and_woman():
    frame = parse_labels("folder-gender", ["pixabay/man/adult-1851571_1280.jpg",
                                           "pixabay/woman/young-3096733_1280.jpg", "pixabay/dog/x.jpg"], {})
    assert list(frame["gender_source"].fillna("-")) == ["male", "female", "-"]
    assert frame["label_note"].notna().tolist() == [False, False, True]


def test_ffhq_id_groups_read_the_140k_real_file_names():
    assert group_key("ffhq-id", "ffhq", "real_vs_fake/real-vs-fake/train/real/01101.jpg", None) == "ffhq:1101"
    assert group_key("ffhq-id", "ffhq", "ffhq/images/01101.jpg", None) == "ffhq:1101"


def test_unsplash_folders_map_onto_the_project_ethnicities():
    frame = parse_labels("folder-names", ["unsplash/female/caucasian/a-b-y-mT2OATY6k-unsplash.jpg",
                                          "unsplash/male/hispanic/x-kNstJF4l5cA-unsplash.jpg",
                                          "unsplash/male/mideastern/x-kNstJF4l5cB-unsplash.jpg",
                                          "unsplash/female/martian/x-kNstJF4l5cC-unsplash.jpg"], {})
    assert list(frame["gender_source"].fillna("-")) == ["female", "male", "male", "-"]
    assert list(frame["ethnicity_source"].fillna("-")) == ["white", "latino", "middle-eastern", "-"]
    assert frame["label_note"].notna().tolist() == [False, False, False, True]


def test_unsplash_groups_are_photographers():
    """Photo ids are 11 characters and may hold '-': the photographer is what stands before them."""
    key = group_key("unsplash-photographer", "unsplash", "unsplash/female/asian/afif-kusuma-y-mT2OATY6k-unsplash.jpg", None)
    assert key == "unsplash:afif-kusuma"
    assert group_key("unsplash-photographer", "unsplash", "unsplash/male/black/Alex-Sorto-suymY_8bk4Y-unsplash.jpg",
                     None) == "unsplash:alex-sorto"
    # a name that breaks the pattern is its own group, as with the file rule
    assert group_key("unsplash-photographer", "unsplash", "unsplash/male/black/odd.jpg", None) == \
        "unsplash:unsplash/male/black/odd.jpg"
