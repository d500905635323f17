"""Tests of the dedupe stage: hashing, candidate search, union-find, keeper policy, conflicts, the stage."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import assert_user_error, run_script
from PIL import Image

from realfake.core.components import union_find
from realfake.core.errors import UserError
from realfake.core.params import find_mirror, load_section
from realfake.dedupe.clusters import star_keepers
from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.hashing import hash_image
from realfake.dedupe.pipeline import run_dedupe
from realfake.dedupe.search import BandPlan, brute_force_pairs, near_pairs

REPO = Path(__file__).resolve().parents[1]
SIDE = 224


def smooth_image(seed: int) -> Image.Image:
    """A random image with face-like spatial statistics: smooth structure plus fine texture."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize(
        (SIDE, SIDE), Image.BICUBIC
    )
    fine = rng.normal(0, 6, (SIDE, SIDE, 3))
    return Image.fromarray(np.clip(np.asarray(coarse, dtype=float) + fine, 0, 255).astype(np.uint8))


def resized_copy(img: Image.Image, side: int = 96) -> Image.Image:
    """Down to `side` px and back up to the crop size (what a low-resolution copy looks like after cropping)."""
    return img.resize((side, side), Image.LANCZOS).resize((SIDE, SIDE), Image.LANCZOS)


def jpeg_copy(img: Image.Image, quality: int = 40) -> Image.Image:
    """The image after a JPEG round trip."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def write_faces(root: Path, rows: list[dict], sources: list[str]) -> None:
    """Write data/faces/<source>.parquet and crops the way the faces stage does (PNG, 224 px)."""
    faces = root / "data" / "faces"
    for name in sources:
        (faces / name).mkdir(parents=True, exist_ok=True)
        recs = []
        for r in (r for r in rows if r["source"] == name):
            rec = {k: v for k, v in r.items() if k != "image"}
            rec.setdefault("status", "kept")
            rec.setdefault("reason", None)
            rec.setdefault("kind", None)
            rec.setdefault("orig_width", SIDE)
            rec.setdefault("orig_height", SIDE)
            rec.setdefault("path", rec["face_id"] + ".jpg")
            rec.setdefault("group", f"{name}:{rec['face_id']}")
            rec.setdefault("crop_path", rec["face_id"].replace(":", "_") + ".png")
            if isinstance(r.get("image"), Image.Image):
                r["image"].save(faces / name / rec["crop_path"])
            elif isinstance(r.get("image"), bytes):
                (faces / name / rec["crop_path"]).write_bytes(r["image"])
            recs.append(rec)
        cols = ["face_id", "source", "path", "label", "kind", "group", "status", "reason", "crop_path",
                "orig_width", "orig_height"]  # fmt: skip
        pd.DataFrame(recs, columns=cols).to_parquet(faces / f"{name}.parquet", index=False)


def face(source: str, fid: str, image, label: str = "real", **extra) -> dict:
    """One faces-stage row with its crop."""
    return {"source": source, "face_id": f"{source}:{fid}", "label": label, "image": image, **extra}


def dedupe(tmp_path: Path, rows: list[dict], raw: dict | None = None, **cfg) -> pd.DataFrame:
    """Run the library on crafted rows (and original images `raw`: {(source, path): image}); table by face_id."""
    sources = sorted({r["source"] for r in rows})
    write_faces(tmp_path, rows, sources)
    for (source, path), img in (raw or {}).items():
        (tmp_path / "data" / "raw" / source).mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / "data" / "raw" / source / path, quality=90)
    raw_dir = tmp_path / "data" / "raw" if raw else None
    result = run_dedupe(tmp_path / "data" / "faces", sources, load_section(DedupeConfig, {"dedupe": cfg}, "dedupe"), raw_dir)
    return result.table.set_index("face_id")


def same_cluster(table: pd.DataFrame, a: str, b: str) -> bool:
    """Whether two faces ended in one cluster."""
    return table.at[a, "cluster_id"] == table.at[b, "cluster_id"]


# ---------------------------------------------------------------- hashes


def test_hashes_equal_imagehash_bit_for_bit():
    for seed in range(12):
        img = smooth_image(seed)
        h = hash_image(img)
        assert h.phash == int(str(imagehash.phash(img)), 16)
        assert h.dhash == int(str(imagehash.dhash(img)), 16)
        mirrored = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert h.phash_flip == int(str(imagehash.phash(mirrored)), 16)


def test_exact_hash_is_of_pixels_not_bytes(tmp_path):
    img = smooth_image(1)
    img.save(tmp_path / "a.png", compress_level=1)
    img.save(tmp_path / "b.png", compress_level=9)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    assert (
        hash_image(Image.open(tmp_path / "a.png")).exact == hash_image(Image.open(tmp_path / "b.png")).exact
    )
    assert hash_image(img).exact != hash_image(smooth_image(2)).exact


# ---------------------------------------------------------------- candidate search and union-find


def planted_hashes(n: int, max_dist: int, seed: int) -> np.ndarray:
    """Random hashes where a fifth are copies of others with 0..max_dist+2 flipped bits (chains included)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    for _ in range(n // 5):
        src, dst = rng.integers(0, n, 2)
        x = h[src]
        for bit in rng.choice(64, rng.integers(0, max_dist + 3), replace=False):
            x ^= np.uint64(1) << np.uint64(bit)
        h[dst] = x
    return h


def as_set(i, j) -> set[tuple[int, int]]:
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), strict=True))


@pytest.mark.parametrize("max_dist", [0, 3, 6, 8, 12])
def test_near_pairs_equal_brute_force(max_dist):
    h = planted_hashes(3000, max_dist, seed=max_dist)
    i, j, d = near_pairs(h, max_dist)
    bi, bj, bd = brute_force_pairs(h, max_dist)
    assert len(i) == len(set(zip(i.tolist(), j.tolist(), strict=True)))  # each pair reported once
    assert as_set(i, j) == as_set(bi, bj)
    assert len(bi) > 100  # the planted pairs are there to be found
    assert np.all(np.bitwise_count(h[i] ^ h[j]) == d)


@pytest.mark.parametrize("plan", [BandPlan(2, 3), BandPlan(4, 1), BandPlan(8, 0)])
def test_near_pairs_any_valid_plan_and_query_mode(plan):
    h = planted_hashes(1500, 7, seed=3)
    q = h[np.random.default_rng(0).permutation(len(h))] ^ np.uint64(1 << 40)
    i, j, _ = near_pairs(h, 7, queries=q, plan=plan)
    bi, bj, _ = brute_force_pairs(h, 7, queries=q)
    assert as_set(i, j) == as_set(bi, bj)


def components_by_search(n: int, a: np.ndarray, b: np.ndarray) -> list[set[int]]:
    """Reference connected components by depth-first search."""
    adj = [[] for _ in range(n)]
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        adj[x].append(y)
        adj[y].append(x)
    seen, comps = [False] * n, []
    for s in range(n):
        if seen[s]:
            continue
        stack, comp, seen[s] = [s], set(), True
        while stack:
            x = stack.pop()
            comp.add(x)
            for y in adj[x]:
                if not seen[y]:
                    seen[y] = True
                    stack.append(y)
        comps.append(comp)
    return comps


def test_union_find_equals_graph_search_on_planted_hashes():
    h = planted_hashes(4000, 8, seed=7)
    i, j, _ = near_pairs(h, 8)
    roots = union_find(len(h), i, j)
    got = {}
    for node, root in enumerate(roots.tolist()):
        got.setdefault(root, set()).add(node)
    want = components_by_search(len(h), i, j)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, want))
    assert all(min(members) == root for root, members in got.items())  # root = smallest member
    assert max(len(c) for c in want) > 2  # chains were planted


def test_union_find_long_chain_and_no_edges():
    n = 10_000
    order = np.random.default_rng(0).permutation(n)
    roots = union_find(n, order[:-1], order[1:])  # one path through every node in random order
    assert np.all(roots == 0)
    assert np.array_equal(union_find(5, np.array([], int), np.array([], int)), np.arange(5))


def test_star_keepers_chain_keeps_both_ends():
    keeper_of = star_keepers(3, np.array([0, 1]), np.array([1, 2]), ranks=np.array([0, 1, 2]))
    assert keeper_of.tolist() == [0, 0, 2]  # C does not match A directly: it stays, B goes


def test_star_keepers_properties_on_random_graph():
    rng = np.random.default_rng(5)
    n = 300
    a, b = rng.integers(0, n, 400), rng.integers(0, n, 400)
    a, b = a[a != b], b[a != b]
    ranks = rng.permutation(n)
    keeper_of = star_keepers(n, a, b, ranks)
    edges = set(zip(a.tolist(), b.tolist(), strict=True)) | set(zip(b.tolist(), a.tolist(), strict=True))
    keepers = {int(k) for k in np.flatnonzero(keeper_of == np.arange(n))}
    for v, k in enumerate(keeper_of.tolist()):
        if k != v:
            assert (
                k in keepers and (v, k) in edges and ranks[k] < ranks[v]
            )  # dropped faces match their keeper
    assert not any((x, y) in edges for x in keepers for y in keepers)  # keepers never match each other


# ---------------------------------------------------------------- crafted image cases


def test_resized_and_jpeg_copies_found_different_images_not(tmp_path):
    base = smooth_image(10)
    rows = [
        face("a", "orig", base),
        face("b", "small", resized_copy(base)),
        face("b", "jpeg", jpeg_copy(base)),
    ]
    rows += [face("a", f"other{k}", smooth_image(100 + k)) for k in range(30)]
    t = dedupe(tmp_path, rows)
    assert same_cluster(t, "a:orig", "b:small")
    assert same_cluster(t, "a:orig", "b:jpeg")
    assert t.at["a:orig", "cluster_size"] == 3
    others = t.loc[[f"a:other{k}" for k in range(30)]]
    assert (others["cluster_size"] == 1).all() and (others["status"] == "kept").all()
    assert (t["status"] == "dropped").sum() == 2
    assert set(t.loc[t["status"] == "dropped", "reason"]) == {"duplicate"}


def test_flipped_copy_found_only_when_match_flips(tmp_path):
    base = smooth_image(20)
    rows = [face("a", "orig", base), face("a", "flip", base.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    off = dedupe(tmp_path / "off", rows)
    assert not same_cluster(off, "a:orig", "a:flip")  # documented default: a mirror image is not a duplicate
    on = dedupe(tmp_path / "on", rows, match_flips=True)
    assert same_cluster(on, "a:orig", "a:flip")


def test_misaligned_crops_of_one_photo_found_through_the_original_frames(tmp_path):
    # one photo at two sizes whose face crops came out 40 px apart (separate detections)
    photo = smooth_image(70).resize((320, 320), Image.LANCZOS)
    copy = photo.resize((200, 200), Image.LANCZOS)
    crop_a = photo.crop((48, 48, 272, 272))
    crop_b = copy.resize((320, 320), Image.LANCZOS).crop((8, 8, 232, 232))
    rows = [face("a", "1", crop_a, path="1.jpg"), face("b", "1", crop_b, path="1.jpg")]
    raw = {("a", "1.jpg"): photo, ("b", "1.jpg"): copy}
    crops_only = dedupe(tmp_path / "off", rows, raw, match_frames=False)
    assert not same_cluster(crops_only, "a:1", "b:1")  # the crops alone are too far apart
    both = dedupe(tmp_path / "on", rows, raw)
    assert same_cluster(both, "a:1", "b:1") and both.at["b:1", "keeper_id"] == "a:1"
    other = dedupe(tmp_path / "other", [*rows[:1], face("c", "1", smooth_image(71), path="1.jpg")],
                   {("a", "1.jpg"): photo, ("c", "1.jpg"): smooth_image(71)})  # fmt: skip
    assert not same_cluster(other, "a:1", "c:1")


def test_empty_inputs():
    empty = np.zeros(0, dtype=np.uint64)
    assert all(len(x) == 0 for x in near_pairs(empty, 6))
    assert all(len(x) == 0 for x in near_pairs(np.arange(5, dtype=np.uint64), 6, queries=empty))


def test_exact_pixel_copy_always_found(tmp_path):
    base = smooth_image(30)
    t = dedupe(tmp_path, [face("a", "x", base), face("b", "y", base)], phash_max=0, dhash_max=0)
    assert same_cluster(t, "a:x", "b:y")


def test_label_conflict_dropped_by_default_and_reported(tmp_path):
    base = smooth_image(40)
    rows = [
        face("real", "r", base),
        face("fake", "f", jpeg_copy(base), label="fake"),
        face("real", "u", smooth_image(41)),
    ]
    t = dedupe(tmp_path / "drop", rows)
    assert t.loc[["real:r", "fake:f"], "label_conflict"].all()
    assert (t.loc[["real:r", "fake:f"], "reason"] == "label_conflict").all()
    assert not t.loc[["real:r", "fake:f"], "is_keeper"].any()
    assert t.at["real:u", "status"] == "kept" and not t.at["real:u", "label_conflict"]
    kept = dedupe(tmp_path / "keep", rows, drop_conflicts=False, source_priority=["real"])
    assert kept.at["real:r", "status"] == "kept" and kept.at["real:r", "label_conflict"]
    assert kept.at["fake:f", "reason"] == "duplicate"


def test_keeper_policy_deterministic_priority_then_resolution(tmp_path):
    base = smooth_image(50)
    rows = [
        face("low", "big", base, orig_width=1024, orig_height=1024),
        face("high", "small", resized_copy(base, 128), orig_width=256, orig_height=256),
        face("high", "mid", jpeg_copy(base), orig_width=384, orig_height=384),
    ]
    t1 = dedupe(tmp_path / "1", rows, source_priority=["high", "low"])
    assert t1.loc[t1["is_keeper"]].index.tolist() == ["high:mid"]  # listed source first, then more pixels
    assert set(t1.loc[~t1["is_keeper"], "keeper_id"]) == {"high:mid"}
    t2 = dedupe(tmp_path / "2", rows[::-1], source_priority=["high", "low"])
    pd.testing.assert_frame_equal(t1.sort_index(), t2.sort_index())  # input order does not matter
    t3 = dedupe(tmp_path / "3", rows)  # no priority: resolution decides
    assert t3.loc[t3["is_keeper"]].index.tolist() == ["low:big"]


def test_bad_params_are_user_errors():
    with pytest.raises(UserError):
        load_section(DedupeConfig, {"dedupe": {"phash_max": 70}}, "dedupe")
    with pytest.raises(UserError):
        load_section(DedupeConfig, {"dedupe": {"phash_maxx": 4}}, "dedupe")
    with pytest.raises(UserError):
        load_section(DedupeConfig, {"dedupe": {"calibration": {"negatives": "many"}}}, "dedupe")


# ---------------------------------------------------------------- the stage


def stage_project(root: Path) -> None:
    """A tiny project: params.yaml + faces tables with duplicates, a conflict, a corrupt crop, a rejected row."""
    base, other = smooth_image(60), smooth_image(61)
    rows = [
        face("ffhq", "1", base, group="ffhq:1"),
        face("ffhq-1024", "1", resized_copy(base, 160), group="ffhq:1", orig_width=384, orig_height=384),
        face("ffhq", "2", smooth_image(62), group="ffhq:2"),
        face("ffhq-1024", "2", jpeg_copy(smooth_image(62)), group="ffhq:2"),
        face("lfw", "a", other, group="lfw:A"),
        face("tpdne", "x", jpeg_copy(other), label="fake", kind="gan"),
        face("lfw", "b", smooth_image(63), group="lfw:B"),
        face("lfw", "c", smooth_image(64), group="lfw:C"),
        face("lfw", "broken", b"not a png at all", group="lfw:D"),
        face("lfw", "gone", None, group="lfw:E", status="rejected", reason="no_face", crop_path=None),
        face("dfdc", "real", smooth_image(65), group="dfdc:v1"),
        face("dfdc", "swap", jpeg_copy(smooth_image(65)), label="fake", kind="faceswap", group="dfdc:v1"),
    ]
    write_faces(root, rows, ["dfdc", "ffhq", "ffhq-1024", "lfw", "tpdne", "empty"])
    params = {
        "sources": {name: {} for name in ["dfdc", "ffhq", "ffhq-1024", "lfw", "tpdne", "empty"]},
        "dedupe": {
            "phash_max": 6,
            "dhash_max": 8,
            "source_priority": ["ffhq", "ffhq-1024", "lfw", "tpdne"],
            "workers": 1,
            "calibration": {
                "positive_sources": ["ffhq", "ffhq-1024"],
                "negative_sources": ["lfw"],
                "negatives": 50,
            },
        },
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.mark.slow  # two stage-script runs (~3 s each here)
def test_stage_outputs_reconcile_and_are_idempotent(tmp_path):
    stage_project(tmp_path)
    outputs = ["data/dedupe.parquet", "metrics/dedupe.json", "reports/dedupe.json", "plots/dedupe/pairs.png"]
    first = run_script(tmp_path, "dedupe.py")
    assert first.returncode == 0, first.stderr
    digests = {p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in outputs}
    second = run_script(tmp_path, "dedupe.py")
    assert second.returncode == 0, second.stderr
    assert digests == {p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in outputs}

    t = pd.read_parquet(tmp_path / "data/dedupe.parquet").set_index("face_id")
    top = yaml.safe_load((tmp_path / "metrics/dedupe.json").read_text())
    m = yaml.safe_load((tmp_path / "reports/dedupe.json").read_text())
    assert m["faces_in"] == len(t) == 11 and m["faces_in"] == m["faces_kept"] + m["faces_dropped"]
    assert top == {"in": 11, "kept": m["faces_kept"], "rejected": m["faces_dropped"],
                   "dup_recall": round(m["calibration"]["recall"], 4)}
    assert m["faces_stage_rows_not_kept"]["lfw"] == 1 and m["by_source"]["empty"]["in"] == 0
    assert t.at["lfw:broken", "reason"] == "unreadable" and t.at["lfw:broken", "detail"]
    assert t.at["ffhq-1024:1", "reason"] == "duplicate" and t.at["ffhq-1024:1", "keeper_id"] == "ffhq:1"
    assert set(t.loc[["lfw:a", "tpdne:x"], "reason"]) == {"label_conflict"}
    assert m["label_conflicts"]["clusters"] == 1
    # a face swap and its source video (same group) are a known derivation: both stay, not a conflict
    assert (t.loc[["dfdc:real", "dfdc:swap"], "status"] == "kept").all() and m["pairs"]["derived"] == 1
    assert m["duplicates_matrix"]["ffhq"]["ffhq-1024"] == m["duplicates_matrix"]["ffhq-1024"]["ffhq"] == 2
    assert m["duplicates_matrix"]["lfw"]["tpdne"] == 1
    cal = m["calibration"]
    assert cal["positives"] == 2 and cal["recall"] == 1.0 and cal["false_merges"] == 0
    assert Image.open(tmp_path / "plots/dedupe/pairs.png").height > 2 * 112  # two source pairs shown


def test_stage_missing_faces_table_is_a_clean_user_error(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sources": {"nowhere": {}}}))
    assert_user_error(run_script(tmp_path, "dedupe.py"), "run the faces stage for 'nowhere' first")


# ---------------------------------------------------------------- real crops from the mirror


def mirror_crops(member_filter, limit: int, source: str) -> list[tuple[str, Image.Image, int, int]]:
    """Centre-square crops at 224 px of the first `limit` matching mirror images (a stand-in for aligned crops)."""
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("offline mirror not found")
    out = []
    with zipfile.ZipFile(mirror / f"{source}.zip") as zf:
        for name in sorted(n for n in zf.namelist() if member_filter(n)):
            img = Image.open(io.BytesIO(zf.read(name))).convert("RGB")
            s = min(img.size)
            box = ((img.width - s) // 2, (img.height - s) // 2, (img.width + s) // 2, (img.height + s) // 2)
            out.append((name, img.crop(box).resize((SIDE, SIDE), Image.LANCZOS), img.width, img.height))
            if len(out) == limit:
                break
    return out


@pytest.mark.slow  # hashes mirror archives (~6 s here)
@pytest.mark.mirror
def test_mirror_ffhq_overlap_found_lfw_people_not_merged(tmp_path):
    big = mirror_crops(lambda n: n.endswith(".jpg"), 40, "ffhq-1024")
    ids = {int(Path(n).stem) for n, *_ in big}
    small = mirror_crops(
        lambda n: n.endswith(".jpg") and "/images/" in n and int(Path(n).stem) in ids, 40, "ffhq"
    )
    people = {}
    for name, img, w, h in mirror_crops(lambda n: n.endswith(".jpg"), 400, "lfw"):
        people.setdefault(Path(name).parent.name, (name, img, w, h))  # one image per identity
    rows = [face("ffhq-1024", Path(n).stem, im, group=f"ffhq:{int(Path(n).stem)}", orig_width=w, orig_height=h)
            for n, im, w, h in big]  # fmt: skip
    rows += [face("ffhq", Path(n).stem, im, group=f"ffhq:{int(Path(n).stem)}", orig_width=w, orig_height=h)
             for n, im, w, h in small]  # fmt: skip
    rows += [face("lfw", Path(n).stem, im, group=f"lfw:{p}") for p, (n, im, w, h) in people.items()]
    t = dedupe(tmp_path, rows, source_priority=["ffhq", "ffhq-1024"])
    for k in ids:
        assert same_cluster(t, f"ffhq:{k:05d}", f"ffhq-1024:{k}")
        assert t.at[f"ffhq-1024:{k}", "keeper_id"] == f"ffhq:{k:05d}"
    lfw = t[t["source"] == "lfw"]
    assert len(lfw) > 40 and (lfw["cluster_size"] == 1).all()


# Pairs of different people whose original frames agree within the frame hash limits (2/4 bits) on the mirror:
# plain backgrounds make the 64-bit frame hashes alike. Found by hashing every generated-faces, pollinations and
# stylegan-140k original; all looked at (different faces). The mirror run merged such pairs before frame_max_diff.
DIFFERENT_PEOPLE_SAME_FRAME_HASH = [
    ("generated-faces", "images/female/white/c9d9b6fd-c049-42d5-9de1-c7ef4811ea9d.jpg",
     "stylegan-140k", "fake/1CUSBRCSX1.jpg"),
    ("generated-faces", "images/female/latino/ae7ed95b-c2a2-4602-8920-47b959566b3d.jpg",
     "generated-faces", "images/female/white/18a7c0be-f723-434c-876a-564ce24c0778.jpg"),
    ("pollinations", "pollinations/15_20241130135843_A_close-up_shot_of_a_young_adult_female_person_of_.jpg",
     "pollinations", "pollinations/20_20241130135952_A_close-up_shot_of_a_young_adult_female_person_of_.jpg"),
    ("pollinations", "pollinations/205_20241130144408_A_close-up_shot_of_a_middle-aged_male_person_of_Pa.jpg",
     "pollinations", "pollinations/374_20241130152504_A_close-up_shot_of_a_middle-aged_male_person_of_Na.jpg"),
    ("pollinations", "pollinations/550_20241130161304_A_close-up_shot_of_a_young_adult_female_person_of_.jpg",
     "pollinations", "pollinations/907_20241130174801_A_close-up_shot_of_a_young_adult_female_person_of_.jpg"),
    ("pollinations", "pollinations/686_20241130164932_A_close-up_shot_of_a_teenager_male_person_of_Afric.jpg",
     "pollinations", "pollinations/944_20241130175604_A_close-up_shot_of_a_teenager_male_person_of_Afric.jpg"),
]  # fmt: skip


@pytest.mark.slow  # real MTCNN crops of 20 mirror photos (~15 s here)
@pytest.mark.mirror
def test_mirror_different_people_with_alike_frame_hashes_not_merged_ffhq_copies_still_are(tmp_path, mirror):
    from realfake.faces.batch import crop_batch, make_detector
    from realfake.faces.config import FacesConfig

    originals: dict[tuple[str, str], bytes] = {}
    for a_src, a, b_src, b in DIFFERENT_PEOPLE_SAME_FRAME_HASH:
        for src, name in ((a_src, a), (b_src, b)):
            with zipfile.ZipFile(mirror / f"{src}.zip") as zf:
                originals[(src, name)] = zf.read(name)
    with zipfile.ZipFile(mirror / "ffhq.zip") as small, zipfile.ZipFile(mirror / "ffhq-1024.zip") as big:
        have = set(big.namelist())  # positives: one FFHQ photo at 256 px (ffhq) and 384 px (ffhq-1024)
        ffhq_ids = [k for k in range(600) if f"ffhq-1024/{k}.jpg" in have][:4]
        for k in ffhq_ids:
            originals[("ffhq", f"ffhq/images/{k:05d}.jpg")] = small.read(f"ffhq/images/{k:05d}.jpg")
            originals[("ffhq-1024", f"ffhq-1024/{k}.jpg")] = big.read(f"ffhq-1024/{k}.jpg")
    keys = list(originals)
    (tmp_path / "in").mkdir()
    items = []
    for n, key in enumerate(keys):
        (tmp_path / "in" / f"{n}.jpg").write_bytes(originals[key])
        items.append((n, str(tmp_path / "in" / f"{n}.jpg"), f"f{n}"))
    cfg = FacesConfig(workers=1)
    crops = {keys[n]: png for n, _rec, png in crop_batch(items, cfg, make_detector(cfg))}
    assert all(crops.values()), "every photo of the test has a face"

    def fid(src: str, name: str) -> str:
        return Path(name).stem[:12]

    rows, raw = [], {}
    for (src, name), png in crops.items():
        group = f"ffhq:{int(Path(name).stem)}" if src.startswith("ffhq") else None
        rows.append(face(src, fid(src, name), png, label="real" if src.startswith("ffhq") else "fake",
                         path=Path(name).name, **({"group": group} if group else {})))
        raw[(src, Path(name).name)] = Image.open(io.BytesIO(originals[(src, name)])).convert("RGB")
    t = dedupe(tmp_path / "run", rows, raw)
    for a_src, a, b_src, b in DIFFERENT_PEOPLE_SAME_FRAME_HASH:
        assert not same_cluster(t, f"{a_src}:{fid(a_src, a)}", f"{b_src}:{fid(b_src, b)}"), (a, b)
    for k in ffhq_ids:
        assert same_cluster(t, f"ffhq:{k:05d}", f"ffhq-1024:{k}"), k
    # without the thumbnail check the frame hashes alone merge them (what the mirror run did)
    loose = dedupe(tmp_path / "loose", rows, raw, frame_max_diff=255.0)
    merged = [(a, b) for a_src, a, b_src, b in DIFFERENT_PEOPLE_SAME_FRAME_HASH
              if same_cluster(loose, f"{a_src}:{fid(a_src, a)}", f"{b_src}:{fid(b_src, b)}")]
    assert len(merged) >= 4, merged
